#include "common/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>

namespace mcimd {

namespace fs = std::filesystem;

namespace {

std::function<void(const fs::path&, WriteStep)>& step_hook() {
  static std::function<void(const fs::path&, WriteStep)> hook;
  return hook;
}

void step(const fs::path& path, WriteStep s) {
  if (auto& hook = step_hook()) hook(path, s);
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status write_all(int fd, std::span<const uint8_t> data, const fs::path& path) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("Failed to write " + path.string(), errno);
    }
    off += static_cast<std::size_t>(n);
  }
  return {};
}

}  // namespace

void set_write_step_hook(std::function<void(const fs::path&, WriteStep)> hook) { step_hook() = std::move(hook); }

Status fsync_dir(const fs::path& dir) {
  Fd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.fd < 0) return fail_errno("Failed to open directory " + dir.string(), errno);
  if (::fsync(fd.fd) < 0) return fail_errno("Failed to sync directory " + dir.string(), errno);
  return {};
}

Result<uid_t> restrict_owned_dir(const fs::path& dir, bool follow_symlink) {
  const int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow_symlink ? 0 : O_NOFOLLOW);
  Fd fd(::open(dir.c_str(), flags));
  if (fd.fd < 0) {
    const int err = errno;
    if (err == ENOENT) return fail(Code::NotFound, "No such directory: " + dir.string());
    // O_NOFOLLOW on a symlink fails with ELOOP; O_DIRECTORY on anything else with ENOTDIR.
    if (err == ELOOP || err == ENOTDIR) return fail(Code::InvalidArgument, dir.string() + ": not a directory");
    if (err == EACCES) {
      // Unreadable to us: most likely another uid's 0700 directory. Its owner is all we report.
      struct stat st {};
      if ((follow_symlink ? ::stat(dir.c_str(), &st) : ::lstat(dir.c_str(), &st)) == 0 && st.st_uid != ::geteuid())
        return st.st_uid;
    }
    return fail_errno("Failed to open directory " + dir.string(), err);
  }
  struct stat st {};
  if (::fstat(fd.fd, &st) < 0) return fail_errno("Failed to stat " + dir.string(), errno);
  if (st.st_uid == ::geteuid() && (st.st_mode & 0077) != 0 && ::fchmod(fd.fd, st.st_mode & 07700) < 0)
    return fail_errno("Failed to take group and other access away from " + dir.string(), errno);
  return st.st_uid;
}

Status write_file_atomic(const fs::path& path, std::span<const uint8_t> data, const WriteOptions& options) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  fs::path dir = path.parent_path();
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(rng());
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, options.mode));
    if (fd.fd < 0) return fail_errno("Failed to create " + tmp.string(), errno);
    // The umask must not widen or narrow what we asked for.
    if (::fchmod(fd.fd, options.mode) < 0) return fail_errno("Failed to chmod " + tmp.string(), errno);
    step(path, WriteStep::TempCreated);
    if (auto st = write_all(fd.fd, data, tmp); !st) {
      ::unlink(tmp.c_str());
      return st;
    }
    step(path, WriteStep::TempWritten);
    if (::fsync(fd.fd) < 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return fail_errno("Failed to sync " + tmp.string(), err);
    }
    step(path, WriteStep::TempSynced);
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail_errno("Failed to rename " + tmp.string() + " to " + path.string(), err);
  }
  step(path, WriteStep::Renamed);
  MCIMD_CHECK(fsync_dir(dir));
  step(path, WriteStep::DirSynced);
  return {};
}

Status write_file_atomic(const fs::path& path, std::string_view text, const WriteOptions& options) {
  return write_file_atomic(path, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()), options);
}

Result<Bytes> read_file(const fs::path& path, std::size_t max_size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.fd < 0) {
    if (errno == ENOENT) return fail(Code::NotFound, "No such file: " + path.string());
    return fail_errno("Failed to open " + path.string(), errno);
  }
  Bytes out;
  uint8_t buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("Failed to read " + path.string(), errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_size)
      return fail(Code::InvalidArgument, path.string() + " is larger than " + std::to_string(max_size) + " bytes");
    out.insert(out.end(), buf, buf + n);
  }
  wipe(buf, sizeof buf);
  return out;
}

Result<std::string> read_text_file(const fs::path& path, std::size_t max_size) {
  auto bytes = MCIMD_TRY(read_file(path, max_size));
  return std::string(bytes.begin(), bytes.end());
}

Status make_private_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return {};
  if (dir.has_parent_path() && dir.parent_path() != dir) MCIMD_CHECK(make_private_dir(dir.parent_path()));
  if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST) return fail_errno("Failed to create " + dir.string(), errno);
  return fsync_dir(dir.has_parent_path() ? dir.parent_path() : fs::path("."));
}

Status remove_tree(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return fail(Code::IoError, "Failed to remove " + dir.string() + ": " + ec.message());
  return fsync_dir(dir.parent_path());
}

}  // namespace mcimd
