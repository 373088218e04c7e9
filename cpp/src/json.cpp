// json.cpp - recursive-descent JSON parser (RFC 8259, depth-limited) and a compact writer.
#include "json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <unordered_set>

namespace mlp {

namespace {

class Parser {
 public:
  Parser(const std::string& s, std::string* nonfinite) : s_(s), nonfinite_(nonfinite) {}
  Json document() {
    Json v = value(0);
    skip_ws();
    if (i_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  const std::string& s_;
  std::string* nonfinite_;  // receives the first NaN / Infinity / -Infinity token, when not null
  std::size_t i_ = 0;

  Json nonfinite(const char* token, double v) {
    if (nonfinite_ && nonfinite_->empty()) *nonfinite_ = token;
    return Json::of(v);
  }

  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(std::string("invalid JSON: ") + what + " at offset " + std::to_string(i_));
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    skip_ws();
    if (i_ < s_.size() && s_[i_] == c) { ++i_; return true; }
    return false;
  }
  void expect_word(const char* w) {
    for (const char* p = w; *p; ++p, ++i_)
      if (i_ >= s_.size() || s_[i_] != *p) fail("unexpected token");
  }
  Json value(int depth) {
    if (depth > 500) fail("nested too deeply");
    skip_ws();
    if (i_ >= s_.size()) fail("unexpected end");
    const char c = s_[i_];
    Json v;
    if (c == '{') {
      ++i_;
      v.type = Json::OBJECT;
      if (eat('}')) return v;
      std::unordered_set<std::string> seen;
      do {
        skip_ws();
        if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string key");
        std::string key = string();
        if (!eat(':')) fail("expected ':'");
        if (!seen.insert(key).second) fail(("the key " + Json::of(key).dump() + " appears twice in one object").c_str());
        v.object.emplace_back(std::move(key), value(depth + 1));
      } while (eat(','));
      if (!eat('}')) fail("expected ',' or '}'");
    } else if (c == '[') {
      ++i_;
      v.type = Json::ARRAY;
      if (eat(']')) return v;
      do v.array.push_back(value(depth + 1)); while (eat(','));
      if (!eat(']')) fail("expected ',' or ']'");
    } else if (c == '"') {
      v.type = Json::STRING;
      v.string = string();
    } else if (c == 't') {
      expect_word("true");
      v = Json::of_bool(true);
    } else if (c == 'f') {
      expect_word("false");
      v = Json::of_bool(false);
    } else if (c == 'n') {
      expect_word("null");
    } else if (c == 'N') {  // Python's json.dumps writes NaN / Infinity by default
      expect_word("NaN");
      v = nonfinite("NaN", std::nan(""));
    } else if (c == 'I') {
      expect_word("Infinity");
      v = nonfinite("Infinity", HUGE_VAL);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      if (s_.compare(i_, 9, "-Infinity") == 0) {
        i_ += 9;
        return nonfinite("-Infinity", -HUGE_VAL);
      }
      v = number();
    } else {
      fail("unexpected character");
    }
    return v;
  }
  bool digit() const { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; }
  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? exactly (strtod alone would take "0x1p3", "inf", "01").
  Json number() {
    const std::size_t start = i_;
    bool integer = true;
    if (s_[i_] == '-') ++i_;
    if (!digit()) fail("bad number");
    if (s_[i_] == '0') ++i_;
    else while (digit()) ++i_;
    if (i_ < s_.size() && s_[i_] == '.') {
      integer = false;
      ++i_;
      if (!digit()) fail("bad number");
      while (digit()) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      integer = false;
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digit()) fail("bad number");
      while (digit()) ++i_;
    }
    const std::string text = s_.substr(start, i_ - start);
    Json v = Json::of(std::strtod(text.c_str(), nullptr));
    v.integer = integer;
    if (integer) {
      errno = 0;
      const long long exact = std::strtoll(text.c_str(), nullptr, 10);
      if (errno != ERANGE) {
        v.exact = true;
        v.int64 = exact;
      }
    }
    return v;
  }
  static void put_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) out += static_cast<char>(cp);
    else if (cp < 0x800) { out += static_cast<char>(0xC0 | (cp >> 6)); out += static_cast<char>(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  unsigned hex4() {
    if (i_ + 4 > s_.size()) fail("bad \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else fail("bad \\u escape");
    }
    return v;
  }
  std::string string() {
    ++i_;  // opening quote
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') { out += c; continue; }
      if (i_ >= s_.size()) fail("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && i_ + 6 <= s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
            const std::size_t at = i_;
            i_ += 2;
            const unsigned lo = hex4();
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else i_ = at;  // a lone high surrogate, kept as it is (as Python does)
          }
          put_utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }
};

void dump_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else out += ch;
  }
  out += '"';
}

void dump_value(std::string& out, const Json& v) {
  switch (v.type) {
    case Json::NUL: out += "null"; break;
    case Json::BOOL: out += v.boolean ? "true" : "false"; break;
    case Json::NUMBER: {
      char buf[32];
      if (v.exact) std::snprintf(buf, sizeof buf, "%lld", v.int64);
      else if (!std::isfinite(v.number)) std::snprintf(buf, sizeof buf, "null");  // strict JSON, as mlp.model_file.to_json
      else if (v.number == 0 && std::signbit(v.number)) std::snprintf(buf, sizeof buf, "-0.0");  // "-0" reads back as the integer 0
      else if (v.number == std::floor(v.number) && std::fabs(v.number) < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", v.number);
      else std::snprintf(buf, sizeof buf, "%.17g", v.number);
      out += buf;
      break;
    }
    case Json::STRING: dump_string(out, v.string); break;
    case Json::ARRAY:
      out += '[';
      for (std::size_t i = 0; i < v.array.size(); ++i) {
        if (i) out += ", ";
        dump_value(out, v.array[i]);
      }
      out += ']';
      break;
    case Json::OBJECT:
      out += '{';
      for (std::size_t i = 0; i < v.object.size(); ++i) {
        if (i) out += ", ";
        dump_string(out, v.object[i].first);
        out += ": ";
        dump_value(out, v.object[i].second);
      }
      out += '}';
      break;
  }
}

}  // namespace

Json Json::parse(const std::string& text, std::string* nonfinite) { return Parser(text, nonfinite).document(); }

bool valid_utf8(const std::string& text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    const unsigned c = s[i];
    std::size_t n;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return false;
    if (size - i - 1 < n) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (std::size_t k = 2; k <= n; ++k)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return false;
    i += n + 1;
  }
  return true;
}


std::string Json::dump() const {
  std::string out;
  dump_value(out, *this);
  return out;
}

const Json* Json::find(const std::string& key) const {
  if (type != OBJECT) return nullptr;
  for (const auto& kv : object)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

Json& Json::set(const std::string& key, Json value) {
  type = OBJECT;
  for (auto& kv : object)
    if (kv.first == key) { kv.second = std::move(value); return kv.second; }
  object.emplace_back(key, std::move(value));
  return object.back().second;
}

}  // namespace mlp
