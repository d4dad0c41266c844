#include "mcim-store/layout.hpp"

#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <system_error>

#include "common/file.hpp"
#include "common/log.hpp"

namespace mcimd::store::detail {

namespace fs = std::filesystem;

namespace {

// write_file_atomic names its temporary "<name>.tmp.<decimal>"; an interrupted write leaves one.
bool is_temporary_of(std::string_view name, std::string_view base) {
  constexpr std::string_view kMarker = ".tmp.";
  if (!name.starts_with(base) || name.substr(base.size()).substr(0, kMarker.size()) != kMarker) return false;
  return all_digits(name.substr(base.size() + kMarker.size()));
}

bool is_object_temporary(std::string_view name) {
  return name.size() > 64 && valid_object_name(name.substr(0, 64)) && is_temporary_of(name, name.substr(0, 64));
}

// lstat(): does path hold a regular file (no symlink, FIFO or device), and how large is it?
// nullopt for a missing path.
Result<std::optional<struct stat>> regular_file(const fs::path& path, Code code) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0) {
    if (errno == ENOENT) return std::optional<struct stat>();
    return fail_errno("Failed to stat " + path.string(), errno);
  }
  if (!S_ISREG(st.st_mode)) return fail(code, path.string() + ": not a regular file");
  return std::optional<struct stat>(st);
}

void remove_logged(const fs::path& path, std::string_view why) {
  std::error_code ec;
  fs::remove(path, ec);
  log::debug(ec ? "Failed to remove " + path.string() + ": " + ec.message() + ", ignoring."
                : "Removed " + path.string() + ", " + std::string(why));
}

}  // namespace

fs::path store_file(const fs::path& root) { return root / kStoreFileName; }
fs::path objects_dir(const fs::path& root) { return root / kObjectsDirName; }
fs::path object_path(const fs::path& root, const ObjectName& name) { return objects_dir(root) / name; }

ObjectName object_name(std::span<const uint8_t> data) {
  std::array<uint8_t, SHA256_DIGEST_LENGTH> digest{};
  ::SHA256(data.data(), data.size(), digest.data());
  return to_hex(digest);
}

Status make_owned_dir(const fs::path& dir, bool follow_symlink) {
  MCIMD_CHECK(make_private_dir(dir));
  auto owner = restrict_owned_dir(dir, follow_symlink);
  if (!owner) {
    if (owner.error().code == Code::InvalidArgument) return fail(Code::StoreCorrupt, owner.error().message);
    return tl::unexpected(owner.error());
  }
  if (*owner != ::geteuid())
    return fail(Code::StoreCorrupt, dir.string() + " is owned by uid " + std::to_string(*owner) +
                                        ", not by uid " + std::to_string(::geteuid()) +
                                        " that mcimd runs as: another user could change the store");
  return {};
}

Result<ObjectsListing> list_objects(const fs::path& root) {
  ObjectsListing out;
  const fs::path dir = objects_dir(root);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool object = valid_object_name(name);
    std::error_code type_ec;  // an entry that cannot be looked at is no object either
    const bool regular = it->symlink_status(type_ec).type() == fs::file_type::regular;
    if ((!object && !is_object_temporary(name)) || !regular)
      return fail(Code::StoreCorrupt, it->path().string() + ": not an object of this store (nor a temporary file "
                                                            "of one); the store removes nothing it does not know");
    if (object) {
      out.objects.insert(name);
    } else {
      out.temporaries.push_back(it->path());
    }
  }
  if (ec) return fail(Code::IoError, "Failed to list " + dir.string() + ": " + ec.message());
  return out;
}

Result<std::optional<std::string>> read_store_file(const fs::path& root) {
  const fs::path path = store_file(root);
  auto st = MCIMD_TRY(regular_file(path, Code::StoreCorrupt));
  if (!st) return std::optional<std::string>();
  if (static_cast<std::size_t>(st->st_size) > kMaxStoreFile)
    return fail(Code::StoreCorrupt, path.string() + ": larger than " + std::to_string(kMaxStoreFile) + " bytes");
  auto text = read_text_file(path, kMaxStoreFile);
  if (text) return std::optional<std::string>(std::move(*text));
  if (text.error().code == Code::InvalidArgument)  // grew since the lstat()
    return fail(Code::StoreCorrupt, path.string() + ": larger than " + std::to_string(kMaxStoreFile) + " bytes");
  if (text.error().code == Code::NotFound) return std::optional<std::string>();
  return tl::unexpected(text.error());
}

Status write_store_file(const fs::path& root, std::string_view text) {
  return write_file_atomic(store_file(root), text);
}

Result<Bytes> read_object(const fs::path& root, const ObjectName& name) {
  const fs::path path = object_path(root, name);
  auto st = MCIMD_TRY(regular_file(path, Code::StoreTampered));
  if (!st) return fail(Code::StoreTampered, path.string() + ": missing, but the store references it");
  if (st->st_size <= 0 || static_cast<std::size_t>(st->st_size) > kMaxBlob)
    return fail(Code::StoreTampered, path.string() + ": size " + std::to_string(st->st_size) + " is not 1.." +
                                         std::to_string(kMaxBlob) + " bytes (truncated or replaced)");
  auto data = read_file(path, kMaxBlob);
  if (!data) {
    if (data.error().code == Code::NotFound || data.error().code == Code::InvalidArgument)
      return fail(Code::StoreTampered, path.string() + ": " + data.error().message);
    return tl::unexpected(data.error());
  }
  if (object_name(*data) != name)
    return fail(Code::StoreTampered, path.string() + ": its content does not hash to its name (replaced or changed)");
  return std::move(*data);
}

Status write_object(const fs::path& root, std::span<const uint8_t> data) {
  return write_file_atomic(object_path(root, object_name(data)), data);
}

void collect_garbage(const fs::path& root, const std::set<ObjectName>& keep) {
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (is_temporary_of(it->path().filename().string(), kStoreFileName))
      remove_logged(it->path(), "left by an interrupted write");
  bool removed = false;
  const fs::path dir = objects_dir(root);
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_object_temporary(name)) {
      remove_logged(it->path(), "left by an interrupted write");
      removed = true;
    } else if (valid_object_name(name) && !keep.contains(name)) {
      remove_logged(it->path(), "which no state references");
      removed = true;
    }
  }
  if (ec) log::debug("Failed to list " + dir.string() + ": " + ec.message() + ", ignoring.");
  if (removed)
    if (auto st = fsync_dir(dir); !st) log::debug(st.error().message + ", ignoring.");
}

}  // namespace mcimd::store::detail
