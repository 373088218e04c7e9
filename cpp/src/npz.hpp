// npz.hpp - NumPy .npy (format 1.0/2.0/3.0) and .npz (ZIP archive) reading and writing.
//
// Writing produces what np.savez produces: a ZIP archive of STORED (uncompressed) "<name>.npy"
// entries, each with a CRC-32, and .npy version 1.0 headers padded to 64 bytes. Reading accepts
// stored and deflated entries (np.savez and np.savez_compressed), ZIP64 records, and checks CRCs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "files.hpp"  // read_file, write_file_atomic

namespace mlp {

struct NpyArray {
  std::string name;            // key in the archive (without ".npy")
  std::string descr;           // '<f4', '<f8', '|u1', '<i8', ... (little-endian or byte types)
  std::vector<std::size_t> shape;
  std::vector<uint8_t> data;   // C order (Fortran-order files are transposed on reading)

  std::size_t count() const;   // number of elements
  std::size_t itemsize() const;

  static NpyArray from_floats(const std::string& name, const float* values, std::vector<std::size_t> shape);
  static NpyArray from_doubles(const std::string& name, const double* values, std::vector<std::size_t> shape);
  static NpyArray from_bytes(const std::string& name, const std::string& bytes);  // uint8 vector
};

// .npy bytes <-> array. Throws std::runtime_error naming the problem. Reads .npy versions 1 and 2
// with headers of at most kMaxNpyHeader bytes, at most 32 dimensions (mlp.model_file's limits).
constexpr std::size_t kMaxNpyHeader = 4096;
NpyArray parse_npy(const uint8_t* data, std::size_t size, const std::string& name);
std::vector<uint8_t> format_npy(const NpyArray& array);

// Largest entry NpzArchive::read inflates by default (4 GiB); a larger declared size is refused
// before anything is decompressed.
constexpr std::uint64_t kMaxEntryBytes = std::uint64_t(1) << 32;
// Limits on an archive's directory, as mlp.model_file's (a model or checkpoint of up to 1000 hidden
// layers has far fewer entries).
constexpr std::uint64_t kMaxEntries = 16 * 1001 + 16;
constexpr std::uint64_t kMaxCentralDirectory = std::uint64_t(8) << 20;

// One entry of a ZIP archive, as its central directory and local header describe it.
struct NpzEntry {
  std::string name;            // as stored: "W0.npy"
  std::string key;             // without ".npy": "W0"
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t csize = 0, usize = 0;  // compressed and uncompressed sizes (declared)
  uint64_t local_offset = 0;   // where its local header starts (checked when the entry is read)

  // Whether the compressed bytes could hold the declared size: equal for a stored entry, at most
  // DEFLATE's largest ratio (1032:1) for a deflated one. Checked before anything is allocated.
  bool size_plausible() const {
    if (method == 0) return csize == usize;
    return method == 8 && usize <= csize * 1032 + 1024;  // csize <= file size < 2^54: no overflow
  }
};

// An .npz (ZIP) archive, read lazily: opening reads the file (a regular file only, capped) and its
// central directory (entry count and size capped, two entries with the same key refused); an
// entry's local header, sizes and data are checked, without any sum that could overflow, only when
// read() asks for that entry, so entries nobody asks for are never inflated (as in Python's
// zipfile). Every error is std::runtime_error("<path>: ...").
class NpzArchive {
 public:
  explicit NpzArchive(const std::string& path, std::uint64_t max_file_bytes = kMaxFileBytes);
  NpzArchive(std::vector<uint8_t> bytes, const std::string& label);  // bytes already in memory

  const std::vector<NpzEntry>& entries() const { return entries_; }
  const NpzEntry* find(const std::string& key) const;  // null when absent
  // The entry's bytes, decompressed (never past its declared size) and CRC-checked. An entry that
  // declares more than max_bytes is refused before anything is inflated.
  std::vector<uint8_t> read_bytes(const NpzEntry& entry, std::uint64_t max_bytes = kMaxEntryBytes) const;
  // read_bytes, parsed as .npy.
  NpyArray read(const NpzEntry& entry, std::uint64_t max_bytes = kMaxEntryBytes) const;
  const std::string& path() const { return path_; }

 private:
  void parse_directory();
  [[noreturn]] void bad(const std::string& what) const;
  std::string path_;
  std::vector<uint8_t> file_;
  std::vector<NpzEntry> entries_;
};

// Reads every entry of an .npz file. Throws std::runtime_error("<path>: ...").
std::vector<NpyArray> read_npz(const std::string& path);

// Writes an .npz archive (stored entries) to a temporary file beside path, then renames it
// (write_file_atomic: `writer` names the path and says which existing file may be replaced).
void write_npz(const std::string& path, const std::vector<NpyArray>& arrays, const Writer& writer = Writer{});

// Whether path begins with a zip header (its first four bytes, nothing more read).
bool starts_like_zip(const std::string& path);

// For a Writer: "" when path is a zip archive (an .npz) holding an entry `key`.npy and, unless
// `key` is "metadata", none named metadata.npy (mlp.datasets.convert's test of its own .npz); else `kind`.
std::string not_npz_with(const std::string& path, const std::string& key, const std::string& kind);

}  // namespace mlp
