// json.hpp - a minimal JSON reader and writer, enough for the model file's metadata.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace mlp {

struct Json {
  enum Type { NUL, BOOL, NUMBER, STRING, ARRAY, OBJECT } type = NUL;
  bool boolean = false;
  double number = 0.0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;  // insertion order kept

  // Throws std::runtime_error("invalid JSON: ... at offset N").
  static Json parse(const std::string& text);
  std::string dump() const;  // compact, keys in insertion order

  const Json* find(const std::string& key) const;  // null when absent or not an object
  bool is_number() const { return type == NUMBER; }
  bool is_string() const { return type == STRING; }

  static Json of(double v) { Json j; j.type = NUMBER; j.number = v; return j; }
  static Json of(const std::string& v) { Json j; j.type = STRING; j.string = v; return j; }
  static Json of_bool(bool v) { Json j; j.type = BOOL; j.boolean = v; return j; }
  static Json make_array() { Json j; j.type = ARRAY; return j; }
  static Json make_object() { Json j; j.type = OBJECT; return j; }
  Json& set(const std::string& key, Json value);  // object: add or replace
};

}  // namespace mlp
