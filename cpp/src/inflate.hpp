// inflate.hpp - DEFLATE (RFC 1951) and gzip (RFC 1952) decompression, and CRC-32.
//
// With zlib (CMake option MLP_USE_ZLIB, ON when CMake finds it) raw DEFLATE and CRC-32 come from
// zlib; without it, from the port's own table-driven decoder (inflate_builtin), so a build with no
// library still reads the .gz MNIST files and np.savez_compressed models. The gzip framing (headers,
// members, CRC and length checks) and the output limits are the same code in both builds.
//
// Every decoder takes a limit on its output and stops as soon as the output would pass it, so a small
// file that expands to gigabytes (a decompression bomb) costs at most the limit in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace mlp {

constexpr std::size_t kNoLimit = std::numeric_limits<std::size_t>::max();

// Thrown when decompressed data would exceed the caller's limit (a corrupt file or a bomb).
struct InflateLimitError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// CRC-32 (IEEE 802.3, as zlib/zip/gzip); chain calls by passing the previous value.
uint32_t crc32(const void* data, std::size_t size, uint32_t crc = 0);

// Raw DEFLATE stream -> bytes. Throws std::runtime_error on corrupt or truncated input, and
// InflateLimitError as soon as the output would exceed max_output bytes (nothing past it is
// decompressed). size_hint (may be 0; capped by the largest DEFLATE ratio) pre-sizes the output.
// *consumed (optional) receives the input bytes used.
std::vector<uint8_t> inflate(const uint8_t* data, std::size_t size, std::size_t size_hint = 0,
                             std::size_t* consumed = nullptr, std::size_t max_output = kNoLimit);

// The same with the port's own decoder, whatever the build: inflate() uses it only when built
// without zlib; the tests (and fuzzers) compare the two.
std::vector<uint8_t> inflate_builtin(const uint8_t* data, std::size_t size, std::size_t size_hint = 0,
                                     std::size_t* consumed = nullptr, std::size_t max_output = kNoLimit);

// gzip file content (one or more members) -> bytes, verifying each member's CRC-32 and length.
// Throws std::runtime_error when corrupt or truncated, InflateLimitError past max_output bytes in all.
std::vector<uint8_t> gunzip(const uint8_t* data, std::size_t size, std::size_t max_output = kNoLimit);

// The first min(n, content size) bytes of a gzip file's content, decompressing no further: a header
// read this way tells how much to expect, which then bounds gunzip(). Checks no CRC (the content is
// not complete); throws std::runtime_error when the start of the file is not valid gzip.
std::vector<uint8_t> gunzip_head(const uint8_t* data, std::size_t size, std::size_t n);

// True when the bytes start with the gzip magic number.
bool is_gzip(const uint8_t* data, std::size_t size);

// "zlib 1.2.13" or "built-in": the DEFLATE decoder inflate() uses.
const char* inflate_backend();

}  // namespace mlp
