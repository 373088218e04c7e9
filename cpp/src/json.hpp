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
  bool integer = false;  // written without fraction or exponent ("784", not "784.0"): Python's int
  // An integer literal within int64 keeps its exact value here (a double holds integers exactly only
  // to 2^53; Python's json keeps them all): class labels such as 2^53 + 1 read and write unchanged.
  bool exact = false;
  long long int64 = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;  // insertion order kept

  // Throws std::runtime_error("invalid JSON: ... at offset N"). Reads what Python's json.loads
  // reads: RFC 8259 plus NaN, Infinity and -Infinity (format version 1 files have them; the first
  // such token goes to *nonfinite when given, for the readers of version 2 to refuse). A key that
  // appears twice in one object is refused (as mlp.model_file refuses it), nesting past 500 too.
  static Json parse(const std::string& text, std::string* nonfinite = nullptr);
  // Compact, keys in insertion order; strict: a NaN or infinite number is written as null (as
  // mlp.model_file.to_json writes it).
  std::string dump() const;

  const Json* find(const std::string& key) const;  // null when absent or not an object
  bool is_number() const { return type == NUMBER; }
  bool is_string() const { return type == STRING; }

  static Json of(double v) { Json j; j.type = NUMBER; j.number = v; return j; }
  static Json of_int(long long v) {
    Json j = of(static_cast<double>(v));
    j.integer = j.exact = true;
    j.int64 = v;
    return j;
  }
  static Json of(const std::string& v) { Json j; j.type = STRING; j.string = v; return j; }
  static Json of_bool(bool v) { Json j; j.type = BOOL; j.boolean = v; return j; }
  static Json make_array() { Json j; j.type = ARRAY; return j; }
  static Json make_object() { Json j; j.type = OBJECT; return j; }
  Json& set(const std::string& key, Json value);  // object: add or replace
};

// Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF), as Python's decode("utf-8").
bool valid_utf8(const std::string& text);

}  // namespace mlp
