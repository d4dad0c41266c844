#pragma once
// Internal: where the store keeps what (store.hpp draws the layout), and the file operations on
// it — owned directories, store.json, content-addressed objects, leftovers of interrupted writes.
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "mcim-store/codec.hpp"

namespace mcimd::store::detail {

inline constexpr const char* kStoreFileName = "store.json";
inline constexpr const char* kObjectsDirName = "objects";

std::filesystem::path store_file(const std::filesystem::path& root);
std::filesystem::path objects_dir(const std::filesystem::path& root);
std::filesystem::path object_path(const std::filesystem::path& root, const ObjectName& name);

// Lower-case hex SHA-256 of data: the name of the object holding it.
ObjectName object_name(std::span<const uint8_t> data);

// Creates dir (0700) when absent; then, on one descriptor, checks that it is a directory owned by
// the effective uid and takes group/other access away. follow_symlink only for the root (systemd's
// DynamicUser= makes /var/lib/<name> a symlink into /var/lib/private); nothing below it may be one.
// Another owner → StoreCorrupt naming the path and both uids; not a directory → StoreCorrupt.
[[nodiscard]] Status make_owned_dir(const std::filesystem::path& dir, bool follow_symlink);

// What objects/ holds. Anything but objects and temporary files of their interrupted writes
// ("<name>.tmp.<n>", common/file.cpp) → StoreCorrupt naming the entry: the folder is the store's
// alone, and the store never removes what it does not recognise.
struct ObjectsListing {
  std::set<ObjectName> objects;
  std::vector<std::filesystem::path> temporaries;
  bool empty() const { return objects.empty() && temporaries.empty(); }
};
[[nodiscard]] Result<ObjectsListing> list_objects(const std::filesystem::path& root);

// store.json's text; nullopt when there is none. Not a regular file (a symlink, say) or larger
// than kMaxStoreFile → StoreCorrupt.
[[nodiscard]] Result<std::optional<std::string>> read_store_file(const std::filesystem::path& root);
// Atomically replaces store.json: the commit point.
[[nodiscard]] Status write_store_file(const std::filesystem::path& root, std::string_view text);

// An object's bytes, checked against its name: missing, not a regular file, empty, larger than
// kMaxBlob or hashing to another name → StoreTampered (the state names it, so it was there and
// whole when committed).
[[nodiscard]] Result<Bytes> read_object(const std::filesystem::path& root, const ObjectName& name);
// Writes data as objects/<its SHA-256> (atomically, replacing a leftover of the same name).
[[nodiscard]] Status write_object(const std::filesystem::path& root, std::span<const uint8_t> data);

// Removes temporary files of interrupted writes (store.json's and objects/'s) and every object
// not in keep. Best effort: what cannot be removed is logged at debug and left for the next time.
void collect_garbage(const std::filesystem::path& root, const std::set<ObjectName>& keep);

}  // namespace mcimd::store::detail
