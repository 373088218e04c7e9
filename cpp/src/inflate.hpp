// inflate.hpp - DEFLATE (RFC 1951) and gzip (RFC 1952) decompression, and CRC-32.
// A small table-driven decoder so that the default build reads the .gz MNIST files without zlib.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mlp {

// CRC-32 (IEEE 802.3, as zlib/zip/gzip); chain calls by passing the previous value.
uint32_t crc32(const void* data, std::size_t size, uint32_t crc = 0);

// Raw DEFLATE stream -> bytes. Throws std::runtime_error on corrupt or truncated input.
// size_hint (may be 0) pre-sizes the output. *consumed (optional) receives the input bytes used.
std::vector<uint8_t> inflate(const uint8_t* data, std::size_t size, std::size_t size_hint = 0,
                             std::size_t* consumed = nullptr);

// gzip file content (one or more members) -> bytes, verifying each member's CRC-32 and length.
std::vector<uint8_t> gunzip(const uint8_t* data, std::size_t size);

// True when the bytes start with the gzip magic number.
bool is_gzip(const uint8_t* data, std::size_t size);

}  // namespace mlp
