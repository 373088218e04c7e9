// files.hpp - reading whole files with a size cap, and creating files safely.
//
// Reading accepts regular files only: a folder, a FIFO or a device such as /dev/zero given as a
// model or data path is refused up front instead of being read until memory runs out.
// Writing never opens a predictable name: a temporary file "<path>.tmp-<pid>-<random>" is created
// with O_CREAT|O_EXCL|O_NOFOLLOW (a planted symlink or file at that name is never followed or
// truncated), written, flushed to disk and renamed over path, so the previous file stays whole
// until the new one is complete; only a regular file is ever replaced. Temporary files left by a
// save that was killed (their process no longer exists) are removed by the next save to the same path.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mlp {

// Largest file read_file accepts by default (16 GiB): more than any model or data set this port
// can hold in memory is refused before reading.
constexpr std::uint64_t kMaxFileBytes = std::uint64_t(1) << 34;

// The bytes of a regular file of at most max_bytes bytes. Throws std::runtime_error("<path>: ...").
std::vector<uint8_t> read_file(const std::string& path, std::uint64_t max_bytes = kMaxFileBytes);

// A writer: the name its messages give the path ("--out", "destination"; mlp._files' `what`), and
// the one kind of existing file it may replace (mlp._files.refuse_foreign): not_own(path) is "" for
// a file of that kind, else what the file is not ("an .mlpd file"), for the one line
// "WHAT PATH exists and is not KIND; give another path or delete it". Without not_own any regular
// file is replaced.
struct Writer {
  std::string what = "output file";
  std::function<std::string(const std::string& path)> not_own;
};

// Where a write to path lands: a symbolic link (or a chain of them) is followed to the file it
// names, even one that does not exist yet, so that the link stays and its target is replaced
// (os.path.realpath in mlp._files.atomic_write). Any other path is returned as it is.
std::string link_target(const std::string& path);

// Writes bytes to a new temporary file beside path and renames it over path (atomic on POSIX file
// systems). The file gets the permissions of the file it replaces, else 0666 minus the umask. An
// existing path that is not a regular file (a folder, a device such as /dev/null, a FIFO, a socket)
// is refused, never replaced. Any failure ("cannot write PATH: File too large", a full disk, ...)
// removes the temporary file and leaves path as it was. Messages start with `what` and the path,
// as mlp._files.check_writable's do.
// A link at path is followed (link_target): the temporary file goes beside the link's target and
// is renamed onto it. With a Writer, an existing file of another kind is refused too.
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes,
                       const std::string& what = "output file");
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes, const Writer& writer);

// Fails early (before hours of training) when path could not be written: its folder is missing or
// not writable, or path exists and is not a regular file. Creates and removes a temporary file the
// same safe way. The messages are mlp._files.check_writable's.
void check_can_write(const std::string& path, const std::string& what = "output file");
void check_can_write(const std::string& path, const Writer& writer);

// Removes "<path>.tmp-<pid>[-...]" files whose process no longer runs (left by a killed save) and
// that belong to this user; returns how many were removed. Called by write_file_atomic.
int remove_stale_temporaries(const std::string& path);

}  // namespace mlp
