// data.cpp - IDX / .mlpd loading: sizes from the headers are checked against the file and limits
// before anything is allocated or decompressed.
#include "data.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <sys/stat.h>

#include "inflate.hpp"
#include "files.hpp"
#include "npz.hpp"
#include "train_defaults.hpp"

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

Writer mlpd_writer(const std::string& what) {
  return Writer{what, [](const std::string& path) -> std::string {
    char head[4] = {0, 0, 0, 0};
    std::FILE* f = std::fopen(path.c_str(), "rb");
    const std::size_t n = f ? std::fread(head, 1, 4, f) : 0;
    if (f) std::fclose(f);
    return n == 4 && std::memcmp(head, "MLPD", 4) == 0 ? "" : "an .mlpd file";
  }};
}

void write_mlpd(const std::string& path, const Dataset& d, const std::string& what) {
  std::vector<uint8_t> out = {'M', 'L', 'P', 'D'};
  put_le32(out, 1);
  put_le32(out, static_cast<uint32_t>(d.n));
  put_le32(out, static_cast<uint32_t>(d.rows));
  put_le32(out, static_cast<uint32_t>(d.cols));
  out.insert(out.end(), d.pixels.begin(), d.pixels.end());
  out.insert(out.end(), d.labels.begin(), d.labels.end());
  write_file_atomic(path, out, mlpd_writer(what));
}

void truncate(Dataset& d, std::size_t n) {
  if (n >= d.n) return;
  d.n = n;
  d.pixels.resize(n * d.features());
  d.labels.resize(n);
}

// ---- data with real-valued targets -----------------------------------------------------------------

namespace {

// The values of a numeric .npy array as doubles (floats, signed and unsigned integers, bool).
std::vector<double> as_doubles(const NpyArray& a, bool floats_only, const std::string& where) {
  const std::string& d = a.descr;
  const std::size_t n = a.count();
  std::vector<double> out(n);
  const uint8_t* p = a.data.data();
  auto load = [&](auto tag) {
    using V = decltype(tag);
    for (std::size_t i = 0; i < n; ++i) {
      V v;
      std::memcpy(&v, p + i * sizeof(V), sizeof(V));
      out[i] = static_cast<double>(v);
    }
  };
  if (d == "<f4") load(float());
  else if (d == "<f8") load(double());
  else if (floats_only) fail(where + " has dtype " + d + "; give float32 or float64 values (X.astype(np.float32))");
  else if (d == "<i8") load(int64_t());
  else if (d == "<i4") load(int32_t());
  else if (d == "<i2") load(int16_t());
  else if (d == "|i1") load(int8_t());
  else if (d == "<u8") load(uint64_t());
  else if (d == "<u4") load(uint32_t());
  else if (d == "<u2") load(uint16_t());
  else if (d == "|u1" || d == "|b1") load(uint8_t());
  else fail(where + " has dtype " + d + "; give real numbers (float32, float64, an integer type or bool)");
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(out[i])) fail(where + " contains NaN or infinity (element " + std::to_string(i) + "); clean the data first");
  return out;
}

constexpr std::size_t kMaxValueWidth = defaults::kMaxWidth;  // features, outputs: mlp.options.MAX_WIDTH
constexpr std::size_t kMaxValueRows = 0x7FFFFFFF;

}  // namespace

bool has_value_split(const NpzArchive& archive, const std::string& split) {
  return archive.find("X_" + split) != nullptr;
}

ValueDataset load_value_split(const NpzArchive& archive, const std::string& split) {
  const std::string& path = archive.path();
  const std::string xs = "X_" + split, ys = "y_" + split;
  const NpzEntry* xe = archive.find(xs);
  const NpzEntry* ye = archive.find(ys);
  if (!xe || !ye)
    fail(path + ": no '" + (xe ? ys : xs) + "' array; a data file for real-valued targets holds X_train, y_train "
         "(and X_test, y_test): np.savez(path, X_train=X, y_train=y, ...)");
  // read() refuses an entry declaring more than kMaxDataBytes before inflating anything.
  const NpyArray xa = archive.read(*xe, kMaxDataBytes);
  const NpyArray ya = archive.read(*ye, kMaxDataBytes);
  ValueDataset d;
  d.source = path;
  d.split = split;
  if (xa.shape.size() != 2 || xa.shape[0] == 0 || xa.shape[1] == 0)
    fail(path + ": " + xs + " must be a 2-D array (n_samples, n_features) with at least one row and column");
  if (ya.shape.size() != 1 && ya.shape.size() != 2)
    fail(path + ": " + ys + " must be 1-D (n_samples,) or 2-D (n_samples, n_outputs)");
  d.n = xa.shape[0];
  d.features = xa.shape[1];
  d.outputs = ya.shape.size() == 2 ? ya.shape[1] : 1;
  if (ya.shape[0] != d.n)
    fail(path + ": " + xs + " has " + std::to_string(d.n) + " rows but " + ys + " has " + std::to_string(ya.shape[0]));
  if (d.outputs == 0) fail(path + ": " + ys + " has 0 columns; give at least one target per sample");
  if (d.n > kMaxValueRows) fail(path + ": " + xs + " has more than 2^31 - 1 rows");
  if (d.features > kMaxValueWidth || d.outputs > kMaxValueWidth)
    fail(path + ": more than " + std::to_string(kMaxValueWidth) + " features or outputs (the model file's limit)");
  d.X = as_doubles(xa, true, path + ": " + xs);
  d.Y = as_doubles(ya, false, path + ": " + ys);
  return d;
}

void truncate(ValueDataset& d, std::size_t n) {
  if (n >= d.n) return;
  d.n = n;
  d.X.resize(n * d.features);
  d.Y.resize(n * d.outputs);
}

}  // namespace mlp
