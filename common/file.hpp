#pragma once
// Files that survive a crash: every write is temp + fsync + rename + fsync(dir), so a reader
// sees the old content or the new, never a mix. Files are created 0600.
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <span>
#include <string>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd {

enum class WriteStep { TempCreated, TempWritten, TempSynced, Renamed, DirSynced };

struct WriteOptions {
  unsigned mode = 0600;
};

Status write_file_atomic(const std::filesystem::path& path, std::span<const uint8_t> data,
                         const WriteOptions& options = {});
Status write_file_atomic(const std::filesystem::path& path, std::string_view text,
                         const WriteOptions& options = {});

// Reads a whole file; missing file → NotFound, other errors → IoError. Files over max_size are
// refused (hostile input must not exhaust memory).
Result<Bytes> read_file(const std::filesystem::path& path, std::size_t max_size = 1 << 20);
Result<std::string> read_text_file(const std::filesystem::path& path, std::size_t max_size = 1 << 20);

// Creates a directory 0700 (and parents) if absent; fsyncs its parent.
Status make_private_dir(const std::filesystem::path& dir);
// Removes a directory tree and fsyncs its parent.
Status remove_tree(const std::filesystem::path& dir);
Status fsync_dir(const std::filesystem::path& dir);
// Checks a directory and its owner on one open descriptor, so the check and the change apply to
// the same inode even when the path is swapped meanwhile: opens dir (O_DIRECTORY; O_NOFOLLOW
// unless follow_symlink, which only concerns its last component), fstat()s it and returns the
// owner's uid. When the owner is the effective uid, group/other access is taken away (fchmod);
// a directory of another uid is never changed — the caller decides what a foreign owner means.
// Missing → NotFound; not a directory, or a symlink where none is followed → InvalidArgument.
[[nodiscard]] Result<uid_t> restrict_owned_dir(const std::filesystem::path& dir, bool follow_symlink);

// Test seam: called after each step of write_file_atomic (crash-atomicity tests _exit here).
void set_write_step_hook(std::function<void(const std::filesystem::path&, WriteStep)> hook);

}  // namespace mcimd
