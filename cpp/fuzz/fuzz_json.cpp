// fuzz_json - the metadata's JSON parser on arbitrary text.
//
// Parsing throws std::runtime_error or returns a value whose dump() parses again to the same dump
// (the writer and the reader agree), for any input including deep nesting and broken escapes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  mlp::Json value;
  try {
    value = mlp::Json::parse(text);
  } catch (const std::runtime_error&) {
    return 0;
  }
  const std::string once = value.dump();
  mlp::Json again;
  try {
    again = mlp::Json::parse(once);
  } catch (const std::runtime_error&) {
    std::abort();  // the writer produced something the reader refuses
  }
  if (again.dump() != once) std::abort();
  return 0;
}
