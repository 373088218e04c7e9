// fuzz_npz - the .npz reader and the model loader on arbitrary bytes.
//
// Whatever the bytes, NpzArchive and load_model either succeed or throw std::runtime_error: no
// sanitizer report, no other exception, and no allocation beyond what the input can justify (the
// run's -rss_limit_mb and -malloc_limit_mb catch one).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "model_file.hpp"
#include "npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const mlp::NpzArchive archive(std::vector<uint8_t>(data, data + size), "fuzz.npz");
    for (const mlp::NpzEntry& e : archive.entries()) {
      try {
        archive.read(e, std::size_t(64) << 20);
      } catch (const std::runtime_error&) {
      }
    }
    try {
      mlp::load_model(archive);
    } catch (const std::runtime_error&) {
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
