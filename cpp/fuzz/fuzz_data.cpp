// fuzz_data - the data set readers (IDX, gzip-compressed IDX, .mlpd) on arbitrary bytes.
//
// The first input byte picks the reader; the rest is the file content. Each either throws
// std::runtime_error or returns a data set whose sizes agree with its arrays.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const int which = data[0] % 3;
  const std::vector<uint8_t> bytes(data + 1, data + size);
  try {
    if (which == 0) {
      const mlp::Dataset d = mlp::parse_mlpd(bytes, "fuzz.mlpd");
      if (d.pixels.size() != d.n * d.features() || d.labels.size() != d.n) std::abort();
    } else {
      const bool images = which == 1;
      const std::vector<uint8_t> content = mlp::decode_idx(bytes, images, "fuzz-idx");
      mlp::Dataset d;
      if (images) {
        mlp::parse_idx_images(d, content, "fuzz-idx");
        if (d.pixels.size() != d.n * d.features()) std::abort();
      } else {
        mlp::parse_idx_labels(d, content, "fuzz-idx");
      }
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
