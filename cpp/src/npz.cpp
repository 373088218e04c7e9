// npz.cpp - stored-ZIP + .npy reader/writer with CRC-32 checks.
#include "npz.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <unistd.h>

#include "inflate.hpp"

namespace mlp {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t rd64(const uint8_t* p) { return rd32(p) | (static_cast<uint64_t>(rd32(p + 4)) << 32); }
void wr16(std::vector<uint8_t>& v, uint32_t x) { v.push_back(x & 0xFF); v.push_back((x >> 8) & 0xFF); }
void wr32(std::vector<uint8_t>& v, uint32_t x) { wr16(v, x & 0xFFFF); wr16(v, x >> 16); }

// ---- .npy header: a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (784, 128), }
class HeaderParser {
 public:
  HeaderParser(const std::string& s, const std::string& name) : s_(s), name_(name) {}
  void parse(std::string& descr, bool& fortran, std::vector<std::size_t>& shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    expect('{');
    while (true) {
      ws();
      if (peek() == '}') break;
      const std::string key = quoted();
      expect(':');
      ws();
      if (key == "descr") { descr = quoted(); have_descr = true; }
      else if (key == "fortran_order") { fortran = word(); have_fortran = true; }
      else if (key == "shape") { shape = tuple(); have_shape = true; }
      else fail(name_ + ": unexpected key '" + key + "' in .npy header");
      ws();
      if (peek() == ',') { ++i_; continue; }
      if (peek() == '}') break;
      bad();
    }
    if (!have_descr || !have_fortran || !have_shape)
      fail(name_ + ": .npy header lacks descr, fortran_order or shape");
  }

 private:
  const std::string& s_;
  const std::string& name_;
  std::size_t i_ = 0;
  [[noreturn]] void bad() { fail(name_ + ": malformed .npy header"); }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() { while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n')) ++i_; }
  void expect(char c) { ws(); if (peek() != c) bad(); ++i_; }
  std::string quoted() {
    ws();
    const char q = peek();
    if (q != '\'' && q != '"') bad();
    const std::size_t end = s_.find(q, i_ + 1);
    if (end == std::string::npos) bad();
    std::string out = s_.substr(i_ + 1, end - i_ - 1);
    i_ = end + 1;
    return out;
  }
  bool word() {
    if (s_.compare(i_, 4, "True") == 0) { i_ += 4; return true; }
    if (s_.compare(i_, 5, "False") == 0) { i_ += 5; return false; }
    bad();
  }
  std::vector<std::size_t> tuple() {
    std::vector<std::size_t> dims;
    expect('(');
    while (true) {
      ws();
      if (peek() == ')') { ++i_; break; }
      if (peek() < '0' || peek() > '9') bad();
      std::size_t d = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (d > (std::size_t(1) << 40)) bad();
        d = d * 10 + static_cast<std::size_t>(peek() - '0');
        ++i_;
      }
      dims.push_back(d);
      ws();
      if (peek() == ',') ++i_;
      else if (peek() != ')') bad();
    }
    return dims;
  }
};

std::size_t itemsize_of(const std::string& descr, const std::string& name) {
  if (descr.size() < 3) fail(name + ": unsupported dtype '" + descr + "'");
  const char order = descr[0];
  if (order == '>') fail(name + ": big-endian dtype '" + descr + "' is not supported");
  if (order != '<' && order != '|' && order != '=')
    fail(name + ": unsupported dtype '" + descr + "'");
  const char kind = descr[1];
  if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b')
    fail(name + ": unsupported dtype '" + descr + "' (only numbers)");
  const std::string digits = descr.substr(2);
  if (digits != "1" && digits != "2" && digits != "4" && digits != "8")
    fail(name + ": unsupported dtype '" + descr + "'");
  return static_cast<std::size_t>(digits[0] - '0');
}

}  // namespace

std::size_t NpyArray::count() const {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

std::size_t NpyArray::itemsize() const { return itemsize_of(descr, name); }

namespace {
// A little-endian float array named `name` (descr "<f4" or "<f8"), copied from `values`.
template <class T>
NpyArray array_from(const std::string& name, const char* descr, const T* values, std::vector<std::size_t> shape) {
  NpyArray a;
  a.name = name;
  a.descr = descr;
  a.shape = std::move(shape);
  a.data.resize(a.count() * sizeof(T));
  if (!a.data.empty()) std::memcpy(a.data.data(), values, a.data.size());
  return a;
}
}  // namespace

NpyArray NpyArray::from_floats(const std::string& name, const float* values, std::vector<std::size_t> shape) {
  return array_from(name, "<f4", values, std::move(shape));
}

NpyArray NpyArray::from_doubles(const std::string& name, const double* values, std::vector<std::size_t> shape) {
  return array_from(name, "<f8", values, std::move(shape));
}

NpyArray NpyArray::from_bytes(const std::string& name, const std::string& bytes) {
  NpyArray a;
  a.name = name;
  a.descr = "|u1";
  a.shape = {bytes.size()};
  a.data.assign(bytes.begin(), bytes.end());
  return a;
}

NpyArray parse_npy(const uint8_t* data, std::size_t size, const std::string& name) {
  static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || std::memcmp(data, magic, 6) != 0) fail(name + ": not a .npy array (bad magic)");
  const int major = data[6];
  std::size_t header_len, offset;
  if (major == 1) {
    header_len = rd16(data + 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) fail(name + ": truncated .npy header");
    header_len = rd32(data + 8);
    offset = 12;
  } else {
    fail(name + ": unsupported .npy format version " + std::to_string(major));
  }
  if (offset + header_len > size) fail(name + ": truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(data + offset), header_len);
  NpyArray a;
  a.name = name;
  bool fortran = false;
  HeaderParser(header, name).parse(a.descr, fortran, a.shape);
  const std::size_t item = itemsize_of(a.descr, name);
  std::size_t count = 1;
  for (std::size_t d : a.shape) {
    if (d != 0 && count > (std::size_t(1) << 40) / d) fail(name + ": array too large");
    count *= d;
  }
  const std::size_t body = offset + header_len;
  if (size - body != count * item)
    fail(name + ": data size " + std::to_string(size - body) + " bytes does not match shape (" +
         std::to_string(count * item) + " expected)");
  a.data.assign(data + body, data + size);
  if (fortran && a.shape.size() > 1) {
    if (a.shape.size() != 2) fail(name + ": Fortran-order arrays of more than 2 dimensions are not supported");
    const std::size_t rows = a.shape[0], cols = a.shape[1];
    std::vector<uint8_t> c(a.data.size());
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j)
        std::memcpy(&c[(i * cols + j) * item], &a.data[(j * rows + i) * item], item);
    a.data.swap(c);
  }
  return a;
}

std::vector<uint8_t> format_npy(const NpyArray& a) {
  std::string shape = "(";
  for (std::size_t i = 0; i < a.shape.size(); ++i) shape += std::to_string(a.shape[i]) + ", ";
  if (a.shape.size() > 1) shape.resize(shape.size() - 2);  // (784, 128) but (10,)
  else if (a.shape.size() == 1) shape.resize(shape.size() - 1);
  shape += ")";
  std::string header = "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // NumPy pads with spaces so that magic + length + header (ending in '\n') is a multiple of 64.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) fail(a.name + ": .npy header too long");
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  wr16(out, static_cast<uint32_t>(header.size()));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), a.data.begin(), a.data.end());
  return out;
}

std::vector<uint8_t> read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path + ": " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  const bool error = std::ferror(f) != 0;
  std::fclose(f);
  if (error) fail(path + ": read error");
  return bytes;
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(static_cast<long>(getpid()));
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(path + ": cannot write (" + std::strerror(errno) + ")");
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    std::remove(tmp.c_str());
    fail(path + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail(path + ": cannot rename the temporary file (" + std::strerror(err) + ")");
  }
}

std::vector<NpyArray> read_npz(const std::string& path) {
  const std::vector<uint8_t> file = read_file(path);
  const uint8_t* z = file.data();
  const std::size_t size = file.size();
  auto bad = [&](const std::string& what) -> void { fail(path + ": " + what); };
  if (size >= 6 && std::memcmp(z, "\x93NUMPY", 6) == 0)
    bad("this is a single .npy array, not an .npz model file");
  // End of central directory: the last 0x06054b50 signature within the final 64 KiB + 22 bytes.
  if (size < 22) bad("not a ZIP/.npz file (too short)");
  std::size_t eocd = std::string::npos;
  const std::size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
  for (std::size_t i = size - 22 + 1; i-- > lowest;) {
    if (rd32(z + i) == 0x06054b50) { eocd = i; break; }
  }
  if (eocd == std::string::npos) bad("not a ZIP/.npz file (no end-of-central-directory record)");
  uint64_t entries = rd16(z + eocd + 10);
  uint64_t cd_size = rd32(z + eocd + 12);
  uint64_t cd_offset = rd32(z + eocd + 16);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {  // ZIP64
    if (eocd < 20 || rd32(z + eocd - 20) != 0x07064b50) bad("ZIP64 locator missing");
    const uint64_t rec = rd64(z + eocd - 20 + 8);
    if (rec + 56 > size || rd32(z + rec) != 0x06064b50) bad("bad ZIP64 end record");
    entries = rd64(z + rec + 32);
    cd_size = rd64(z + rec + 40);
    cd_offset = rd64(z + rec + 48);
  }
  if (cd_offset > size || cd_size > size - cd_offset) bad("central directory out of range (truncated file?)");
  std::vector<NpyArray> arrays;
  std::size_t p = static_cast<std::size_t>(cd_offset);
  const std::size_t cd_end = static_cast<std::size_t>(cd_offset + cd_size);
  for (uint64_t e = 0; e < entries; ++e) {
    if (p + 46 > cd_end || rd32(z + p) != 0x02014b50) bad("corrupt central directory");
    const uint16_t flags = rd16(z + p + 8);
    const uint16_t method = rd16(z + p + 10);
    const uint32_t crc = rd32(z + p + 16);
    uint64_t csize = rd32(z + p + 20);
    uint64_t usize = rd32(z + p + 24);
    const uint16_t name_len = rd16(z + p + 28);
    const uint16_t extra_len = rd16(z + p + 30);
    const uint16_t comment_len = rd16(z + p + 32);
    uint64_t local = rd32(z + p + 42);
    if (p + 46 + name_len + extra_len + comment_len > cd_end) bad("corrupt central directory");
    std::string name(reinterpret_cast<const char*>(z + p + 46), name_len);
    // ZIP64 extra field: the 64-bit values of the fields that read 0xFFFFFFFF, in this order.
    const uint8_t* x = z + p + 46 + name_len;
    for (std::size_t off = 0; off + 4 <= extra_len;) {
      const uint16_t id = rd16(x + off), len = rd16(x + off + 2);
      if (off + 4 + len > extra_len) break;
      if (id == 0x0001) {
        std::size_t q = off + 4;
        auto take = [&](uint64_t& field) {
          if (field == 0xFFFFFFFF) {
            if (q + 8 > off + 4 + len) bad("bad ZIP64 extra field");
            field = rd64(x + q);
            q += 8;
          }
        };
        take(usize);
        take(csize);
        take(local);
      }
      off += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;
    if (flags & 1) bad("entry '" + name + "' is encrypted");
    if (local + 30 > size || rd32(z + local) != 0x04034b50) bad("corrupt local header of '" + name + "'");
    const std::size_t data_at = static_cast<std::size_t>(local) + 30 + rd16(z + local + 26) + rd16(z + local + 28);
    if (data_at > size || csize > size - data_at) bad("entry '" + name + "' is truncated");
    std::vector<uint8_t> content;
    if (method == 0) {
      if (csize != usize) bad("entry '" + name + "': stored sizes disagree");
      content.assign(z + data_at, z + data_at + csize);
    } else if (method == 8) {
      try {
        content = inflate(z + data_at, static_cast<std::size_t>(csize), static_cast<std::size_t>(std::min<uint64_t>(usize, csize * 1032)));
      } catch (const std::exception& ex) {
        bad("entry '" + name + "': " + ex.what());
      }
      if (content.size() != usize) bad("entry '" + name + "': wrong uncompressed size");
    } else {
      bad("entry '" + name + "' uses unsupported compression method " + std::to_string(method));
    }
    if (crc32(content.data(), content.size()) != crc) bad("CRC-32 mismatch in entry '" + name + "' (corrupt file)");
    std::string key = name;
    if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
    try {
      arrays.push_back(parse_npy(content.data(), content.size(), key));
    } catch (const std::exception& ex) {
      bad(ex.what());
    }
  }
  return arrays;
}

void write_npz(const std::string& path, const std::vector<NpyArray>& arrays) {
  std::vector<uint8_t> out, central;
  // Fixed DOS time stamp (1980-01-01 00:00) so identical models give identical files.
  const uint32_t dos_time = 0, dos_date = (0 << 9) | (1 << 5) | 1;
  for (const NpyArray& a : arrays) {
    const std::vector<uint8_t> body = format_npy(a);
    const std::string name = a.name + ".npy";
    if (body.size() >= 0xFFFFFFFFu || out.size() >= 0xFFFFFFFFu)
      fail(path + ": arrays over 4 GiB are not supported");
    const uint32_t crc = crc32(body.data(), body.size());
    const uint32_t offset = static_cast<uint32_t>(out.size());
    const uint32_t sz = static_cast<uint32_t>(body.size());
    wr32(out, 0x04034b50); wr16(out, 20); wr16(out, 0); wr16(out, 0);  // signature, version, flags, stored
    wr16(out, dos_time); wr16(out, dos_date); wr32(out, crc); wr32(out, sz); wr32(out, sz);
    wr16(out, static_cast<uint32_t>(name.size())); wr16(out, 0);
    out.insert(out.end(), name.begin(), name.end());
    out.insert(out.end(), body.begin(), body.end());
    wr32(central, 0x02014b50); wr16(central, 20); wr16(central, 20); wr16(central, 0); wr16(central, 0);
    wr16(central, dos_time); wr16(central, dos_date); wr32(central, crc); wr32(central, sz); wr32(central, sz);
    wr16(central, static_cast<uint32_t>(name.size())); wr16(central, 0); wr16(central, 0);
    wr16(central, 0); wr16(central, 0); wr32(central, 0100644u << 16); wr32(central, offset);
    central.insert(central.end(), name.begin(), name.end());
  }
  const uint32_t cd_offset = static_cast<uint32_t>(out.size());
  out.insert(out.end(), central.begin(), central.end());
  wr32(out, 0x06054b50); wr16(out, 0); wr16(out, 0);
  wr16(out, static_cast<uint32_t>(arrays.size())); wr16(out, static_cast<uint32_t>(arrays.size()));
  wr32(out, static_cast<uint32_t>(central.size())); wr32(out, cd_offset); wr16(out, 0);
  write_file_atomic(path, out);
}

}  // namespace mlp
