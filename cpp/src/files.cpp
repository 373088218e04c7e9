// files.cpp - bounded reads of regular files; exclusive, no-follow creation of temporary files;
// writes that replace regular files of the writer's own kind only, through links to them.
#include "files.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mlp {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

std::string errno_text(int err) { return std::strerror(err); }

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

void split_path(const std::string& path, std::string& dir, std::string& base) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    dir = ".";
    base = path;
  } else {
    dir = slash == 0 ? "/" : path.substr(0, slash);
    base = path.substr(slash + 1);
  }
}

// The process's umask, read without changing it where /proc allows.
mode_t current_umask() {
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    unsigned value = 0;
    bool found = false;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "Umask: %o", &value) == 1) {
        found = true;
        break;
      }
    std::fclose(f);
    if (found) return static_cast<mode_t>(value);
  }
  const mode_t m = ::umask(022);
  ::umask(m);
  return m;
}

// Creates "<path>.tmp-<pid>-<random hex>" exclusively (never an existing file, never through a
// symlink), mode 0600. Returns the descriptor and sets name.
int create_temporary(const std::string& path, const std::string& what, std::string& name) {
  std::random_device device;
  std::mt19937_64 rng((static_cast<uint64_t>(device()) << 32) ^ device() ^ static_cast<uint64_t>(::getpid()));
  for (int attempt = 0; attempt < 100; ++attempt) {
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, "%012llx", static_cast<unsigned long long>(rng() & 0xFFFFFFFFFFFFull));
    name = path + ".tmp-" + std::to_string(static_cast<long>(::getpid())) + "-" + suffix;
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    if (errno != EEXIST) {
      const int err = errno;
      std::string dir, base;
      split_path(path, dir, base);
      if (err == ENOENT) fail(what + " " + path + ": the folder " + dir + " does not exist; create it first");
      fail(what + " " + path + ": cannot create files in " + dir + " (" + errno_text(err) + ")");
    }
  }
  fail(what + " " + path + ": cannot create a temporary file beside it (100 names taken)");
}

// What an existing path that is not a regular file is, in mlp._files._special_kind's words.
std::string special_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "an unknown kind of file";
}

// The checks of mlp._files.check_writable and refuse_foreign, with their messages, word for word:
// an existing path must be a regular file (never a folder, a device, a FIFO or a socket, which a
// rename would replace) of the writer's own kind, and its folder a folder. Links are followed: the
// checks apply to the file a link names.
void check_target(const std::string& path, const Writer& writer) {
  const std::string& what = writer.what;
  if (path.empty()) fail(what + ": the path is empty; give a file name");
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail(what + " " + path + " is a folder; give a file name inside it");
    if (!S_ISREG(st.st_mode))
      fail(what + " " + path + " is not a regular file (it is " + special_kind(st.st_mode) + "); give another path");
    if (writer.not_own) {
      const std::string kind = writer.not_own(path);
      if (!kind.empty()) fail(what + " " + path + " exists and is not " + kind + "; give another path or delete it");
    }
  }
  std::string dir, base;
  split_path(link_target(path), dir, base);
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) fail(what + " " + path + ": the folder " + dir + " does not exist; create it first");
  } else if (!S_ISDIR(st.st_mode)) {
    fail(what + " " + path + ": " + dir + " is not a folder");
  }
}

// write() until done; with SIGXFSZ ignored (main), a file-size limit is EFBIG here, not a silent death.
void write_all(int fd, const uint8_t* data, std::size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write " + path + ": " + errno_text(errno));
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace

std::vector<uint8_t> read_file(const std::string& path, std::uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (f.fd < 0) fail(path + ": " + errno_text(errno));
  struct stat st;
  if (::fstat(f.fd, &st) != 0) fail(path + ": " + errno_text(errno));
  if (S_ISDIR(st.st_mode)) fail(path + " is a folder, not a file");
  if (!S_ISREG(st.st_mode))
    fail(path + " is not a regular file (a device, FIFO or socket); give the path of a file");
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  if (size > max_bytes)
    fail(path + ": " + std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) +
         "-byte limit for this kind of file");
  std::vector<uint8_t> bytes(static_cast<std::size_t>(size));
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(f.fd, bytes.data() + got, bytes.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path + ": read error (" + errno_text(errno) + ")");
    }
    if (n == 0) fail(path + ": the file shrank while it was being read");
    got += static_cast<std::size_t>(n);
  }
  return bytes;
}

std::string link_target(const std::string& path) {
  std::string current = path;
  for (int hop = 0; hop < 40; ++hop) {  // 40: the kernel's own limit on a chain of links
    struct stat st;
    if (::lstat(current.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return current;
    std::vector<char> buffer(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 255) + 1);
    const ssize_t n = ::readlink(current.c_str(), buffer.data(), buffer.size());
    if (n < 0 || static_cast<std::size_t>(n) >= buffer.size()) return current;  // changed meanwhile: as it is
    const std::string link(buffer.data(), static_cast<std::size_t>(n));
    if (link.empty()) return current;
    std::string dir, base;
    split_path(current, dir, base);
    current = link[0] == '/' ? link : dir + "/" + link;
  }
  return path;  // a loop of links: the write fails on it and says so
}

int remove_stale_temporaries(const std::string& path) {
  std::string dir, base;
  split_path(path, dir, base);
  const std::string prefix = base + ".tmp-";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  int removed = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    // "<pid>" (older saves) or "<pid>-<hex>"
    std::size_t i = prefix.size();
    long pid = 0;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9' && pid < 100000000) pid = pid * 10 + (name[i++] - '0');
    if (i == prefix.size() || pid <= 0 || pid >= 100000000) continue;
    if (i < name.size()) {
      if (name[i] != '-' || i + 1 == name.size()) continue;
      bool hex = true;
      for (std::size_t k = i + 1; k < name.size(); ++k) hex = hex && std::isxdigit(static_cast<unsigned char>(name[k]));
      if (!hex) continue;
    }
    if (pid == static_cast<long>(::getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to know
    struct stat st;
    if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) continue;
    if (::unlinkat(::dirfd(d), name.c_str(), 0) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes, const std::string& what) {
  write_file_atomic(path, bytes, Writer{what, nullptr});
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes, const Writer& writer) {
  check_target(path, writer);
  const std::string target = link_target(path);  // a link stays; the file it names is replaced
  struct stat existing;
  const bool replacing = ::stat(target.c_str(), &existing) == 0;
  const mode_t mode = replacing ? (existing.st_mode & 07777) : (0666 & ~current_umask());
  remove_stale_temporaries(target);
  std::string tmp;
  const int fd = create_temporary(target, writer.what, tmp);
  try {
    Fd f(fd);
    write_all(fd, bytes.data(), bytes.size(), path);
    if (::fsync(fd) != 0) fail("cannot write " + path + ": " + errno_text(errno));
    ::fchmod(fd, mode);
    const int closed = ::close(fd);
    f.fd = -1;
    if (closed != 0) fail("cannot write " + path + ": " + errno_text(errno));
    check_target(path, writer);  // again: a device, folder or user's file put there meanwhile is not replaced either
    if (::rename(tmp.c_str(), target.c_str()) != 0)
      fail("cannot write " + path + ": cannot rename the temporary file into place (" + errno_text(errno) + ")");
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

void check_can_write(const std::string& path, const std::string& what) { check_can_write(path, Writer{what, nullptr}); }

void check_can_write(const std::string& path, const Writer& writer) {
  check_target(path, writer);
  const std::string target = link_target(path);
  remove_stale_temporaries(target);
  std::string tmp;
  ::close(create_temporary(target, writer.what, tmp));
  ::unlink(tmp.c_str());
}

}  // namespace mlp
