// fuzz_inflate - DEFLATE and gzip decoding on arbitrary bytes, with an output limit.
//
// The first input byte picks the limit (up to 1 MiB), the rest is the compressed stream. Checks:
// decoding throws std::runtime_error or returns at most `limit` bytes; gunzip_head returns a prefix of
// what gunzip returns; with zlib in the build, the port's own decoder and zlib agree on every stream
// both accept.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "inflate.hpp"

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t limit = std::size_t(1) << (data[0] % 21);
  ++data;
  --size;
  bool builtin_ok = false, main_ok = false;
  std::vector<uint8_t> a, b;
  try {
    a = mlp::inflate_builtin(data, size, 0, nullptr, limit);
    builtin_ok = true;
    check(a.size() <= limit);
  } catch (const std::runtime_error&) {
  }
  try {
    b = mlp::inflate(data, size, 0, nullptr, limit);
    main_ok = true;
    check(b.size() <= limit);
  } catch (const std::runtime_error&) {
  }
  if (builtin_ok && main_ok) check(a == b);
  std::vector<uint8_t> whole;
  bool whole_ok = false;
  try {
    whole = mlp::gunzip(data, size, limit);
    whole_ok = true;
    check(whole.size() <= limit);
  } catch (const std::runtime_error&) {
  }
  try {
    const std::vector<uint8_t> head = mlp::gunzip_head(data, size, 16);
    check(head.size() <= 16);
    if (whole_ok && !whole.empty())
      check(std::memcmp(head.data(), whole.data(), std::min(head.size(), whole.size())) == 0);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
