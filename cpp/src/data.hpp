// data.hpp - MNIST-style image data sets: IDX files (raw or .gz) or the Python converter's .mlpd.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "files.hpp"  // Writer

namespace mlp {

struct Dataset {
  std::size_t n = 0;        // examples
  std::size_t rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // n * rows * cols, row-major
  std::vector<uint8_t> labels;  // n
  std::string source;           // file(s) it came from, for messages
  std::size_t features() const { return rows * cols; }
};

// Loads split "train" or "test" from folder dir. Looks for, in order:
//   <split>.mlpd                                  (the Python converter's binary format)
//   train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz]   (test: t10k-...)
// Throws std::runtime_error naming the file and the problem.
Dataset load_split(const std::string& dir, const std::string& split);

// Largest data set (decompressed bytes) a header may announce: 16 GiB.
constexpr std::uint64_t kMaxDataBytes = std::uint64_t(1) << 34;

// Parsers for the individual formats (bytes already in memory; .gz is undone by the callers).
Dataset parse_mlpd(const std::vector<uint8_t>& bytes, const std::string& source);
void parse_idx_images(Dataset& d, const std::vector<uint8_t>& bytes, const std::string& source);
void parse_idx_labels(Dataset& d, const std::vector<uint8_t>& bytes, const std::string& source);

// The IDX bytes of a file's content: itself, or for gzip content, decompressed no further than the
// size its IDX header announces (images: true for an image file, false for labels).
std::vector<uint8_t> decode_idx(std::vector<uint8_t> bytes, bool images, const std::string& source);

// Writes the .mlpd format (little-endian header "MLPD", version 1, n, rows, cols; pixels; labels).
// An existing file is replaced only when it is an .mlpd file itself (mlpd_writer).
void write_mlpd(const std::string& path, const Dataset& d, const std::string& what = "destination");

// The writer of .mlpd files (mlp.datasets.convert's): an existing file is replaced only when it
// starts with the magic "MLPD", else "WHAT PATH exists and is not an .mlpd file; give another path or delete it".
Writer mlpd_writer(const std::string& what = "destination");

// Keeps the first n examples (no-op when n >= d.n).
void truncate(Dataset& d, std::size_t n);

// ---- data with real-valued targets (regression, multilabel) -------------------------------------
// An .npz archive (np.savez or np.savez_compressed) holding, for a split "train" or "test",
//   X_<split>   (n, features) float32 or float64, the inputs as the network sees them (no scaling)
//   y_<split>   (n,) or (n, k) real targets: float32/float64, or integer/bool (0/1 labels)
// Every value must be finite. Sizes come from the .npy headers and are checked (entry sizes against
// kMaxDataBytes, widths against 10^8, rows against 2^31 - 1) before anything is inflated.
struct ValueDataset {
  std::size_t n = 0, features = 0, outputs = 0;
  std::vector<double> X;  // n * features, row-major
  std::vector<double> Y;  // n * outputs, row-major ((n,) targets become one column)
  std::string source;     // the .npz file, for messages
  std::string split;      // "train" or "test": the arrays are X_<split>, y_<split>
};

class NpzArchive;
// Whether the archive holds X_<split>.
bool has_value_split(const NpzArchive& archive, const std::string& split);
// Throws std::runtime_error("<path>: ...") for a missing entry, a wrong dtype or shape, or NaN/inf.
ValueDataset load_value_split(const NpzArchive& archive, const std::string& split);
// Keeps the first n rows (no-op when n >= d.n).
void truncate(ValueDataset& d, std::size_t n);

}  // namespace mlp
