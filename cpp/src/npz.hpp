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

// .npy bytes <-> array. Throws std::runtime_error naming the problem.
NpyArray parse_npy(const uint8_t* data, std::size_t size, const std::string& name);
std::vector<uint8_t> format_npy(const NpyArray& array);

// Reads every entry of an .npz file. Throws std::runtime_error("<path>: ...").
std::vector<NpyArray> read_npz(const std::string& path);

// Writes an .npz archive (stored entries) to a temporary file beside path, then renames it.
void write_npz(const std::string& path, const std::vector<NpyArray>& arrays);

// Whole-file helpers used by the data loaders too.
std::vector<uint8_t> read_file(const std::string& path);
// Writes to "<path>.tmp-<pid>" and renames over path (atomic on POSIX file systems).
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace mlp
