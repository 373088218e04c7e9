// npz.cpp - ZIP + .npy reader/writer with CRC-32 checks; the reader trusts no offset or size.
#include "npz.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <unordered_set>

#include "inflate.hpp"
#include "json.hpp"  // valid_utf8

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
    if (shape.size() > 32) fail(name_ + ": .npy header with more than 32 dimensions");
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
  } else if (major == 2) {
    if (size < 12) fail(name + ": truncated .npy header");
    header_len = rd32(data + 8);
    offset = 12;
  } else {
    fail(name + ": unsupported .npy format version " + std::to_string(major));
  }
  if (header_len > kMaxNpyHeader)
    fail(name + ": .npy header of " + std::to_string(header_len) + " bytes (at most " +
         std::to_string(kMaxNpyHeader) + " are read)");
  if (header_len > size - offset) fail(name + ": truncated .npy header");
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

// ---- .npz (ZIP) reading --------------------------------------------------------------------------
// Every bounds check has the overflow-free form `off > size || n > size - off`: offsets and sizes
// come from the file (ZIP64 fields are 64 bits) and `off + n` could wrap around.

NpzArchive::NpzArchive(const std::string& path, std::uint64_t max_file_bytes)
    : path_(path), file_(read_file(path, max_file_bytes)) {
  parse_directory();
}

NpzArchive::NpzArchive(std::vector<uint8_t> bytes, const std::string& label) : path_(label), file_(std::move(bytes)) {
  parse_directory();
}

void NpzArchive::bad(const std::string& what) const { fail(path_ + ": " + what); }

const NpzEntry* NpzArchive::find(const std::string& key) const {
  for (const NpzEntry& e : entries_)
    if (e.key == key) return &e;
  return nullptr;
}

void NpzArchive::parse_directory() {
  const uint8_t* z = file_.data();
  const std::size_t size = file_.size();
  // True when [off, off + n) lies inside the file.
  auto inside = [size](uint64_t off, uint64_t n) { return off <= size && n <= size - off; };
  if (size >= 6 && std::memcmp(z, "\x93NUMPY", 6) == 0)
    bad("this is a single .npy array, not an .npz model file");
  // End of central directory: the last 0x06054b50 signature within the final 64 KiB + 22 bytes.
  if (size < 22) bad("not a ZIP/.npz file (too short)");
  if (z[0] != 'P' || z[1] != 'K') bad("not an .npz file (no ZIP header at its start); is it the right file?");
  std::size_t eocd = std::string::npos;
  const std::size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
  for (std::size_t i = size - 22 + 1; i-- > lowest;) {
    if (rd32(z + i) == 0x06054b50) { eocd = i; break; }
  }
  if (eocd == std::string::npos) bad("not a ZIP/.npz file (no end-of-central-directory record)");
  uint64_t entries = rd16(z + eocd + 10);
  uint64_t cd_size = rd32(z + eocd + 12);
  uint64_t cd_offset = rd32(z + eocd + 16);
  // ZIP64: a locator right before the end record points at the 64-bit end record, used whenever
  // present (as Python's zipfile does); without one, 0xFFFF... fields cannot be resolved.
  const bool has_locator = eocd >= 20 && rd32(z + eocd - 20) == 0x07064b50;
  if ((entries == 0xFFFF || cd_size == 0xFFFFFFFF) && !has_locator) bad("ZIP64 locator missing");
  uint64_t location = eocd;  // where the end record that describes the directory starts
  if (has_locator) {
    const uint64_t rec = rd64(z + eocd - 20 + 8);
    if (!inside(rec, 56) || rd32(z + rec) != 0x06064b50) bad("bad ZIP64 end record");
    entries = rd64(z + rec + 32);
    cd_size = rd64(z + rec + 40);
    cd_offset = rd64(z + rec + 48);
    location = rec;
  }
  if (entries > kMaxEntries || cd_size > kMaxCentralDirectory)
    bad("the archive declares " + std::to_string(entries) + " entries in a " + std::to_string(cd_size) +
        "-byte directory; a model file has at most " + std::to_string(kMaxEntries) + " entries");
  // Like Python's zipfile, the directory is the cd_size bytes just before the end record. Where the
  // recorded offset says otherwise, bytes were put in front of the archive, and every offset in it
  // moves by the difference (arithmetic mod 2^64; a wrong result fails inside() when used).
  if (cd_size > location) bad("central directory out of range (truncated file?)");
  const uint64_t shift = location - cd_size - cd_offset;
  std::size_t p = static_cast<std::size_t>(location - cd_size);
  const std::size_t cd_end = static_cast<std::size_t>(location);
  // Records are read the way Python's zipfile reads them (so that both accept the same files): until
  // the directory's bytes are used up (the entry count only meets the limit above); a record's name,
  // extra field and comment are cut where the directory ends.
  std::unordered_set<std::string> keys;
  while (p < cd_end) {
    if (cd_end - p < 46 || rd32(z + p) != 0x02014b50) bad("corrupt central directory");
    if (entries_.size() == kMaxEntries)
      bad("the archive holds more than " + std::to_string(kMaxEntries) + " entries; a model file has fewer");
    NpzEntry entry;
    const unsigned extract_version = z[p + 6];
    entry.flags = rd16(z + p + 8);
    entry.method = rd16(z + p + 10);
    entry.crc = rd32(z + p + 16);
    entry.csize = rd32(z + p + 20);
    entry.usize = rd32(z + p + 24);
    const std::size_t name_len = rd16(z + p + 28);
    const std::size_t extra_len = rd16(z + p + 30);
    const std::size_t comment_len = rd16(z + p + 32);
    uint64_t local = rd32(z + p + 42);
    if (extract_version > 63)
      bad("an entry needs zip version " + std::to_string(extract_version / 10) + "." +
          std::to_string(extract_version % 10) + " to extract (at most 6.3 is supported)");
    const std::size_t name_at = p + 46, left = cd_end - name_at;
    const std::size_t name_got = std::min(name_len, left);
    const std::size_t extra_got = std::min(extra_len, left - name_got);
    entry.name.assign(reinterpret_cast<const char*>(z + name_at), name_got);
    if ((entry.flags & 0x800) && !valid_utf8(entry.name)) bad("an entry's name is not valid UTF-8");
    // ZIP64 extra field: the 64-bit values of the fields that read 0xFFFFFFFF, in this order.
    const uint8_t* x = z + name_at + name_got;
    for (std::size_t off = 0; extra_got - off >= 4;) {
      const std::size_t id = rd16(x + off), len = rd16(x + off + 2);
      if (len > extra_got - off - 4) bad("corrupt extra field in the central directory");
      if (id == 0x0001) {
        std::size_t q = 0;  // bytes of this field used so far
        auto take = [&](uint64_t& field) {
          if (field == 0xFFFFFFFF) {
            if (len - q < 8) bad("bad ZIP64 extra field");
            field = rd64(x + off + 4 + q);
            q += 8;
          }
        };
        take(entry.usize);
        take(entry.csize);
        take(local);
      }
      off += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;  // may pass cd_end (fields cut short): the loop ends
    entry.key = entry.name;
    if (entry.key.size() > 4 && entry.key.compare(entry.key.size() - 4, 4, ".npy") == 0)
      entry.key.resize(entry.key.size() - 4);
    if (!keys.insert(entry.key).second)
      bad("two entries named '" + entry.key + "' (a tampered file: which one is meant?)");
    entry.local_offset = local + shift;
    entries_.push_back(std::move(entry));
  }
}

std::vector<uint8_t> NpzArchive::read_bytes(const NpzEntry& e, std::uint64_t max_bytes) const {
  if (e.flags & 1) bad("entry '" + e.name + "' is encrypted");
  if (e.flags & 0x60) bad("entry '" + e.name + "' uses compressed patched data or strong encryption");
  if (e.usize > max_bytes)
    bad("entry '" + e.name + "' declares " + std::to_string(e.usize) + " bytes, more than the " +
        std::to_string(max_bytes) + " expected; refusing to decompress it");
  if (e.method == 8 && !e.size_plausible())
    bad("entry '" + e.name + "' declares " + std::to_string(e.usize) + " bytes from " + std::to_string(e.csize) +
        " compressed bytes, more than DEFLATE can expand to (a corrupt or crafted file)");
  // The local header: same name as the directory says; the data follow its name and extra field.
  const std::size_t size = file_.size();
  const uint8_t* z = file_.data();
  auto inside = [size](uint64_t off, uint64_t n) { return off <= size && n <= size - off; };
  const uint64_t local = e.local_offset;
  if (!inside(local, 30) || rd32(z + local) != 0x04034b50) bad("corrupt local header of '" + e.name + "'");
  const std::size_t local_name = rd16(z + local + 26), local_extra = rd16(z + local + 28);
  if (!inside(local + 30, local_name) || local_name != e.name.size() ||
      std::memcmp(z + local + 30, e.name.data(), local_name) != 0)
    bad("entry '" + e.name + "': the names in the directory and in the local header differ");
  const uint64_t data_offset = local + 30 + local_name + local_extra;  // < 2^64: local <= size
  if (!inside(data_offset, e.csize)) bad("entry '" + e.name + "' is truncated");
  const uint8_t* data = z + data_offset;
  std::vector<uint8_t> content;
  if (e.method == 0) {
    if (e.csize != e.usize) bad("entry '" + e.name + "': stored sizes disagree");
    content.assign(data, data + e.csize);
  } else if (e.method == 8) {
    const std::size_t usize = static_cast<std::size_t>(e.usize);
    try {
      // Never more than the declared size: a bomb stops there.
      content = inflate(data, static_cast<std::size_t>(e.csize), usize, nullptr, usize);
    } catch (const InflateLimitError&) {
      // The stream goes on past the declared size. Like Python's zipfile (so that both read the same
      // files), take the declared bytes, which the CRC then checks, and ignore the rest undecoded:
      // gunzip_head decodes a prefix, so the stream gets a minimal gzip header in front of it.
      std::vector<uint8_t> wrapped = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
      wrapped.insert(wrapped.end(), data, data + e.csize);
      wrapped.insert(wrapped.end(), 8, 0);
      try {
        content = gunzip_head(wrapped.data(), wrapped.size(), usize);
      } catch (const std::exception& ex) {
        bad("entry '" + e.name + "': " + ex.what());
      }
    } catch (const std::exception& ex) {
      bad("entry '" + e.name + "': " + ex.what() + " (its declared size is " + std::to_string(e.usize) + " bytes)");
    }
    if (content.size() != e.usize) bad("entry '" + e.name + "': wrong uncompressed size");
  } else {
    bad("entry '" + e.name + "' uses unsupported compression method " + std::to_string(e.method));
  }
  if (crc32(content.data(), content.size()) != e.crc) bad("CRC-32 mismatch in entry '" + e.name + "' (corrupt file)");
  return content;
}

NpyArray NpzArchive::read(const NpzEntry& e, std::uint64_t max_bytes) const {
  const std::vector<uint8_t> content = read_bytes(e, max_bytes);
  try {
    return parse_npy(content.data(), content.size(), e.key);
  } catch (const std::exception& ex) {
    bad(ex.what());
  }
}

std::vector<NpyArray> read_npz(const std::string& path) {
  const NpzArchive archive(path);
  std::vector<NpyArray> arrays;
  for (const NpzEntry& e : archive.entries()) arrays.push_back(archive.read(e));
  return arrays;
}

void write_npz(const std::string& path, const std::vector<NpyArray>& arrays, const Writer& writer) {
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
  write_file_atomic(path, out, writer);
}

bool starts_like_zip(const std::string& path) {
  // The first four bytes only: a user's large text file is never read whole to be refused.
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char head[4] = {0, 0, 0, 0};
  const std::size_t n = std::fread(head, 1, 4, f);
  std::fclose(f);
  return n == 4 && head[0] == 'P' && head[1] == 'K' &&
         ((head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6));
}

std::string not_npz_with(const std::string& path, const std::string& key, const std::string& kind) {
  if (!starts_like_zip(path)) return kind;
  try {
    const NpzArchive archive(path);
    const NpzEntry* entry = archive.find(key);
    if (!entry || entry->name != key + ".npy") return kind;
    if (key != "metadata" && archive.find("metadata")) return kind;
    return "";
  } catch (const std::exception&) {
    return kind;
  }
}

}  // namespace mlp
