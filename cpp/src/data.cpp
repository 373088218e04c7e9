// data.cpp - IDX / .mlpd loading: sizes from the headers are checked against the file and limits
// before anything is allocated or decompressed.
#include "data.hpp"

#include <cstring>
#include <stdexcept>
#include <sys/stat.h>

#include "inflate.hpp"
#include "files.hpp"

namespace mlp {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
void put_le32(std::vector<uint8_t>& v, uint32_t x) {
  for (int i = 0; i < 4; ++i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}

// The total size an IDX header announces (16 + n*rows*cols for images, 8 + n for labels), checked
// for its magic number and against kMaxDataBytes. head holds the file's first bytes.
std::uint64_t idx_announced_size(const uint8_t* head, std::size_t size, bool images, const std::string& source) {
  if (images) {
    if (size < 16 || be32(head) != 0x00000803)
      fail(source + ": not an IDX image file (magic number 0x00000803 expected)");
    const std::uint64_t n = be32(head + 4), rows = be32(head + 8), cols = be32(head + 12);
    if (rows == 0 || cols == 0 || rows * cols > (1u << 24))
      fail(source + ": implausible image size " + std::to_string(rows) + "x" + std::to_string(cols));
    const std::uint64_t total = 16 + n * rows * cols;  // < 2^57: no overflow
    if (total > kMaxDataBytes)
      fail(source + ": the header announces " + std::to_string(n) + " images of " + std::to_string(rows) + "x" +
           std::to_string(cols) + " pixels (" + std::to_string(total) + " bytes), more than the " +
           std::to_string(kMaxDataBytes) + "-byte limit");
    return total;
  }
  if (size < 8 || be32(head) != 0x00000801)
    fail(source + ": not an IDX label file (magic number 0x00000801 expected)");
  return 8 + static_cast<std::uint64_t>(be32(head + 4));
}

// Reads an IDX file, undoing gzip when the content starts with the gzip magic number. A gzip file's
// header is decompressed first; the size it announces bounds the rest (a bomb stops there).
std::vector<uint8_t> read_idx(const std::string& path, bool images) { return decode_idx(read_file(path), images, path); }

}  // namespace

std::vector<uint8_t> decode_idx(std::vector<uint8_t> bytes, bool images, const std::string& path) {
  if (!is_gzip(bytes.data(), bytes.size())) return bytes;
  try {
    const std::vector<uint8_t> head = gunzip_head(bytes.data(), bytes.size(), images ? 16 : 8);
    const std::uint64_t announced = idx_announced_size(head.data(), head.size(), images, path);
    // DEFLATE expands at most ~1032:1; a header announcing more than that is a lie or a truncation.
    if (announced > 1032 * static_cast<std::uint64_t>(bytes.size()) + 1024)
      fail(path + ": the header announces " + std::to_string(announced) + " bytes, more than this " +
           std::to_string(bytes.size()) + "-byte gzip file can hold (truncated or corrupt)");
    return gunzip(bytes.data(), bytes.size(), static_cast<std::size_t>(announced));
  } catch (const std::exception& ex) {
    const std::string what = ex.what();
    if (what.compare(0, path.size(), path) == 0) throw;
    fail(path + ": " + what);
  }
}

namespace {

std::string find_idx(const std::string& dir, const std::string& stem) {
  const std::string base = dir + "/" + stem;
  if (exists(base)) return base;
  if (exists(base + ".gz")) return base + ".gz";
  return "";
}

}  // namespace

Dataset parse_mlpd(const std::vector<uint8_t>& bytes, const std::string& source) {
  if (bytes.size() < 4 || std::memcmp(bytes.data(), "MLPD", 4) != 0)
    fail(source + ": not an .mlpd data file (bad magic number)");
  if (bytes.size() < 20)
    fail(source + ": too short for the 20-byte .mlpd header (" + std::to_string(bytes.size()) + " bytes)");
  const uint32_t version = le32(&bytes[4]);
  if (version != 1)
    fail(source + ": .mlpd version " + std::to_string(version) + " is not supported (expected 1)");
  Dataset d;
  d.n = le32(&bytes[8]);
  d.rows = le32(&bytes[12]);
  d.cols = le32(&bytes[16]);
  d.source = source;
  if (d.rows == 0 || d.cols == 0 || static_cast<std::uint64_t>(d.rows) * d.cols > (1u << 24))
    fail(source + ": implausible image size " + std::to_string(d.rows) + "x" + std::to_string(d.cols));
  const std::uint64_t pixels = static_cast<std::uint64_t>(d.n) * d.rows * d.cols;  // < 2^56
  if (bytes.size() != 20 + pixels + d.n)
    fail(source + ": file size " + std::to_string(bytes.size()) + " does not match its header (" +
         std::to_string(20 + pixels + d.n) + " bytes expected; truncated?)");
  d.pixels.assign(bytes.begin() + 20, bytes.begin() + 20 + static_cast<std::ptrdiff_t>(pixels));
  d.labels.assign(bytes.begin() + 20 + static_cast<std::ptrdiff_t>(pixels), bytes.end());
  return d;
}

void parse_idx_images(Dataset& d, const std::vector<uint8_t>& bytes, const std::string& source) {
  const std::uint64_t announced = idx_announced_size(bytes.data(), bytes.size(), true, source);
  if (bytes.size() != announced)
    fail(source + ": " + std::to_string(bytes.size()) + " bytes, but the header announces " +
         std::to_string(announced) + " (truncated?)");
  d.n = be32(&bytes[4]);
  d.rows = be32(&bytes[8]);
  d.cols = be32(&bytes[12]);
  d.pixels.assign(bytes.begin() + 16, bytes.end());
}

void parse_idx_labels(Dataset& d, const std::vector<uint8_t>& bytes, const std::string& source) {
  const std::uint64_t announced = idx_announced_size(bytes.data(), bytes.size(), false, source);
  if (bytes.size() != announced)
    fail(source + ": " + std::to_string(bytes.size()) + " bytes, but the header announces " +
         std::to_string(announced) + " (truncated?)");
  d.labels.assign(bytes.begin() + 8, bytes.end());
}

Dataset load_split(const std::string& dir, const std::string& split) {
  const std::string mlpd = dir + "/" + split + ".mlpd";
  if (exists(mlpd)) return parse_mlpd(read_file(mlpd), mlpd);
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images = find_idx(dir, prefix + "-images-idx3-ubyte");
  const std::string labels = find_idx(dir, prefix + "-labels-idx1-ubyte");
  if (images.empty() || labels.empty())
    fail("no " + split + " data in '" + dir + "': expected " + split + ".mlpd or " + prefix +
         "-images-idx3-ubyte[.gz] and " + prefix + "-labels-idx1-ubyte[.gz]");
  Dataset d;
  parse_idx_images(d, read_idx(images, true), images);
  parse_idx_labels(d, read_idx(labels, false), labels);
  if (d.labels.size() != d.n)
    fail(labels + ": " + std::to_string(d.labels.size()) + " labels for " + std::to_string(d.n) +
         " images in " + images);
  d.source = images;
  return d;
}

void write_mlpd(const std::string& path, const Dataset& d) {
  std::vector<uint8_t> out = {'M', 'L', 'P', 'D'};
  put_le32(out, 1);
  put_le32(out, static_cast<uint32_t>(d.n));
  put_le32(out, static_cast<uint32_t>(d.rows));
  put_le32(out, static_cast<uint32_t>(d.cols));
  out.insert(out.end(), d.pixels.begin(), d.pixels.end());
  out.insert(out.end(), d.labels.begin(), d.labels.end());
  write_file_atomic(path, out);
}

void truncate(Dataset& d, std::size_t n) {
  if (n >= d.n) return;
  d.n = n;
  d.pixels.resize(n * d.features());
  d.labels.resize(n);
}

}  // namespace mlp
