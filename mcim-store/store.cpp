#include "mcim-store/store.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <system_error>

#include "common/file.hpp"
#include "common/log.hpp"
#include "mcim-store/codec.hpp"

namespace mcimd::store {

namespace fs = std::filesystem;
using namespace detail;

namespace {

constexpr const char* kStoreFileName = "store.json";
constexpr const char* kProfilesDir = "profiles";
constexpr const char* kMetadataFileName = "profile.json";
constexpr const char* kSqnFileName = "sqn.json";
constexpr const char* kKPub = "k.pub";
constexpr const char* kKPriv = "k.priv";
constexpr const char* kOpcPub = "opc.pub";
constexpr const char* kOpcPriv = "opc.priv";
constexpr std::array<const char*, 4> kBlobFiles = {kKPub, kKPriv, kOpcPub, kOpcPriv};
// write_file_atomic names its temporary "<name>.tmp.<random>"; an interrupted write leaves one.
constexpr std::string_view kTempMarker = ".tmp.";

struct Entry {
  ProfileMetadata meta;
  uint64_t meta_generation = 0;
  uint64_t sqn_generation = 0;
};

struct State {
  uint64_t generation = 0;
  uint32_t next_index = 0;
  std::optional<std::string> active;
  std::optional<Bytes> srk;
  std::map<uint32_t, Entry> profiles;  // by index
};

fs::path profiles_dir(const fs::path& root) { return root / kProfilesDir; }
fs::path profile_dir(const fs::path& root, const std::string& id) { return profiles_dir(root) / id; }

// Reads one file of the store. A missing, non-regular or oversized file is StoreCorrupt
// naming it; other failures stay IoError.
Result<std::string> read_store_file(const fs::path& path, std::size_t max_size) {
  std::error_code ec;
  auto st = fs::symlink_status(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    return fail(Code::IoError, "Failed to stat " + path.string() + ": " + ec.message());
  if (!fs::exists(st)) return fail(Code::StoreCorrupt, path.string() + ": missing");
  if (!fs::is_regular_file(st)) return fail(Code::StoreCorrupt, path.string() + ": not a regular file");
  auto text = read_text_file(path, max_size);
  if (text) return text;
  if (text.error().code == Code::NotFound) return fail(Code::StoreCorrupt, path.string() + ": missing");
  if (text.error().code == Code::InvalidArgument)
    return fail(Code::StoreCorrupt, path.string() + ": larger than " + std::to_string(max_size) + " bytes");
  return tl::unexpected(text.error());
}

Result<Bytes> read_blob(const fs::path& path) {
  auto text = MCIMD_TRY(read_store_file(path, kMaxBlob));
  if (text.empty()) return fail(Code::StoreCorrupt, path.string() + ": empty");
  return Bytes(text.begin(), text.end());
}

// Creates dir 0700 when absent and takes group/other access away when present (a systemd
// StateDirectory= is 0755 unless configured otherwise). The root may be a symlink (systemd's
// DynamicUser= links /var/lib/<name> into /var/lib/private); nothing below it may.
Status private_dir(const fs::path& dir, bool follow_symlink) {
  MCIMD_CHECK(make_private_dir(dir));
  struct stat st {};
  if ((follow_symlink ? ::stat(dir.c_str(), &st) : ::lstat(dir.c_str(), &st)) < 0)
    return fail_errno("Failed to stat " + dir.string(), errno);
  if (!S_ISDIR(st.st_mode)) return fail(Code::StoreCorrupt, dir.string() + ": not a directory");
  if ((st.st_mode & 0077) != 0 && ::chmod(dir.c_str(), 0700) < 0)
    return fail_errno("Failed to restrict " + dir.string() + " to 0700", errno);
  return {};
}

StoreFile to_store_file(const State& s) {
  StoreFile f;
  f.generation = s.generation;
  f.next_index = s.next_index;
  f.active = s.active;
  f.srk = s.srk;
  for (const auto& [index, e] : s.profiles)
    f.profiles.push_back({e.meta.id, e.meta_generation, e.sqn_generation});
  return f;
}

Status write_store_file(const fs::path& root, const State& s) {
  return write_file_atomic(root / kStoreFileName, encode_store(to_store_file(s)));
}

bool same_parameters(const aka::SqnParameters& a, const aka::SqnParameters& b) {
  return a.ind_bits == b.ind_bits && a.delta == b.delta && a.age_limit == b.age_limit &&
         a.require_amf_separation == b.require_amf_separation;
}

// What open() found, and what it must change once every check has passed.
struct Inspection {
  State state;
  bool create = false;              // no store.json yet: write one at the counter's value
  bool complete_increment = false;  // store.json is at counter + 1: increment
  bool roll_forward = false;        // a per-profile file is at counter + 1: commit it
  std::vector<fs::path> leftovers;  // profile folders store.json does not list
  std::vector<fs::path> temp_files;
};

void collect_temp_files(const fs::path& dir, std::vector<fs::path>& out) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find(kTempMarker) != std::string::npos && it->is_regular_file(ec)) out.push_back(it->path());
  }
}

// A per-profile file's generation against what store.json records for it. Newer by exactly one
// commit while store.json is at the counter: written by a commit interrupted before its
// store.json rename. Such a file is rolled forward (kept and committed), not discarded:
//  - sqn.json: save_sqn_array runs before RES leaves the daemon, so the interrupted
//    authentication released nothing. Keeping the higher SEQ only means that AUTN is never
//    accepted again (the network sends a fresh vector, or resynchronises, TS 33.102 §6.3.5);
//    discarding it would need the previous array, which the atomic rename has replaced, and
//    would re-open a SEQ a captured AUTN could be replayed against.
//  - profile.json (set_state): again the previous content is gone, and the new state is what
//    the caller asked for.
// Either way the store is wholly in the new state afterwards, never a mix.
Result<uint64_t> check_generation(const fs::path& path, uint64_t file_gen, uint64_t recorded, uint64_t store_gen,
                                  uint64_t counter, bool& roll_forward) {
  if (file_gen == recorded) return recorded;
  if (file_gen < recorded)
    return fail(Code::RollbackDetected, path.string() + " has generation " + std::to_string(file_gen) +
                                            " but store.json records " + std::to_string(recorded) +
                                            ": the file is older than the store (restored from a backup?)");
  if (store_gen == counter && counter != std::numeric_limits<uint64_t>::max() && file_gen == counter + 1) {
    roll_forward = true;
    return file_gen;
  }
  return fail(Code::StoreCorrupt, path.string() + " has generation " + std::to_string(file_gen) +
                                      ", newer than store.json records (" + std::to_string(recorded) + ")");
}

Result<Inspection> inspect(const fs::path& root, uint64_t counter) {
  Inspection out;
  const fs::path store_path = root / kStoreFileName;
  const fs::path pdir = profiles_dir(root);
  collect_temp_files(root, out.temp_files);

  std::error_code ec;
  if (!fs::exists(fs::symlink_status(store_path, ec))) {
    if (ec && ec != std::errc::no_such_file_or_directory)
      return fail(Code::IoError, "Failed to stat " + store_path.string() + ": " + ec.message());
    // A new store. Profile folders without a store.json are not leftovers of ours (add_profile
    // needs an open store): refuse rather than delete what may be someone's only copy.
    for (fs::directory_iterator it(pdir, ec), end; !ec && it != end; it.increment(ec))
      if (parse_profile_id(it->path().filename().string()))
        return fail(Code::StoreCorrupt, store_path.string() + ": missing, but " + pdir.string() +
                                            " holds profile folders");
    if (ec) return fail(Code::IoError, "Failed to list " + pdir.string() + ": " + ec.message());
    out.create = true;
    out.state.generation = counter;
    return out;
  }

  auto text = MCIMD_TRY(read_store_file(store_path, kMaxStoreFile));
  auto file = MCIMD_TRY(decode_store(text, store_path.string()));
  const uint64_t g = file.generation;
  if (g < counter)
    return fail(Code::RollbackDetected,
                store_path.string() + " has generation " + std::to_string(g) + " but the TPM counter is at " +
                    std::to_string(counter) + ": the store is older than the TPM counter (restored from a backup?)");
  if (g - counter > 1)
    return fail(Code::StoreCorrupt, store_path.string() + " has generation " + std::to_string(g) +
                                        ", ahead of the TPM counter (" + std::to_string(counter) +
                                        ") by more than one commit (a different or cleared TPM?)");
  out.complete_increment = g == counter + 1;

  State& s = out.state;
  s.generation = g;
  s.next_index = file.next_index;
  s.active = file.active;
  s.srk = file.srk;
  std::set<std::string> iccids;
  for (const auto& record : file.profiles) {
    const fs::path dir = profile_dir(root, record.id);
    auto st = fs::symlink_status(dir, ec);
    if (!fs::is_directory(st)) return fail(Code::StoreCorrupt, dir.string() + ": missing or not a directory");

    const fs::path meta_path = dir / kMetadataFileName;
    auto meta = MCIMD_TRY(decode_metadata(MCIMD_TRY(read_store_file(meta_path, kMaxMetadataFile)), meta_path.string()));
    if (meta.meta.id != record.id)
      return fail(Code::StoreCorrupt, meta_path.string() + ": field 'id' does not match the folder name");
    if (!iccids.insert(meta.meta.iccid).second)
      return fail(Code::StoreCorrupt, meta_path.string() + ": field 'iccid' repeats another profile's");

    const fs::path sqn_path = dir / kSqnFileName;
    auto sqn = MCIMD_TRY(decode_sqn(MCIMD_TRY(read_store_file(sqn_path, kMaxSqnFile)), sqn_path.string(), meta.meta.sqn));
    if (auto restored = aka::SqnArray::restore(meta.meta.sqn, sqn.seq); !restored)
      return fail(Code::StoreCorrupt, sqn_path.string() + ": " + restored.error().message);

    for (const char* name : kBlobFiles) {
      const fs::path blob = dir / name;
      auto bst = fs::symlink_status(blob, ec);
      if (!fs::is_regular_file(bst)) return fail(Code::StoreCorrupt, blob.string() + ": missing or not a regular file");
      auto size = fs::file_size(blob, ec);
      if (ec) return fail(Code::IoError, "Failed to stat " + blob.string() + ": " + ec.message());
      if (size == 0 || size > kMaxBlob)
        return fail(Code::StoreCorrupt, blob.string() + ": size " + std::to_string(size) + " is not 1.." +
                                            std::to_string(kMaxBlob) + " bytes");
    }

    Entry e;
    e.meta = std::move(meta.meta);
    e.meta_generation =
        MCIMD_TRY(check_generation(meta_path, meta.generation, record.meta_generation, g, counter, out.roll_forward));
    e.sqn_generation =
        MCIMD_TRY(check_generation(sqn_path, sqn.generation, record.sqn_generation, g, counter, out.roll_forward));
    collect_temp_files(dir, out.temp_files);
    const uint32_t index = e.meta.index;
    s.profiles.emplace(index, std::move(e));
  }

  for (fs::directory_iterator it(pdir, ec), end; !ec && it != end; it.increment(ec)) {
    auto index = parse_profile_id(it->path().filename().string());
    if (index && !s.profiles.contains(*index)) out.leftovers.push_back(it->path());
  }
  if (ec) return fail(Code::IoError, "Failed to list " + pdir.string() + ": " + ec.message());
  return out;
}

// Opens root: checks everything first, then completes interrupted commits and cleans up.
Result<State> load(const fs::path& root, GenerationCounter& counter) {
  MCIMD_CHECK(private_dir(root, /*follow_symlink=*/true));
  MCIMD_CHECK(private_dir(profiles_dir(root), /*follow_symlink=*/false));
  const uint64_t c = MCIMD_TRY(counter.read());
  auto found = MCIMD_TRY(inspect(root, c));
  State& s = found.state;

  for (const auto& tmp : found.temp_files) {
    std::error_code ec;
    fs::remove(tmp, ec);
    log::debug(ec ? "Failed to remove " + tmp.string() + ": " + ec.message() + ", ignoring."
                  : "Removed " + tmp.string() + ", left by an interrupted write");
  }
  for (const auto& dir : found.leftovers) {
    // Folders of an add_profile that never committed, or of a remove_profile that committed.
    auto st = remove_tree(dir);
    log::debug(st ? "Removed leftover profile folder " + dir.string()
                  : "Failed to remove leftover profile folder " + dir.string() + ": " + st.error().message +
                        ", ignoring.");
  }

  if (found.create) {
    MCIMD_CHECK(write_store_file(root, s));
    log::debug("Created store " + root.string() + " at generation " + std::to_string(s.generation));
  } else if (found.roll_forward) {
    s.generation = c + 1;
    MCIMD_CHECK(write_store_file(root, s));
    found.complete_increment = true;
    log::debug("Committed a per-profile file of an interrupted change at generation " + std::to_string(s.generation));
  }
  if (found.complete_increment) {
    const uint64_t v = MCIMD_TRY(counter.increment());
    if (v != s.generation)
      return fail(Code::StoreCorrupt, "The TPM counter moved to " + std::to_string(v) + " instead of " +
                                          std::to_string(s.generation) + " while completing a commit");
    log::debug("Completed the commit of generation " + std::to_string(s.generation));
  }
  return std::move(s);
}

// Exceptions (allocation, filesystem, JSON) never leave the store's API.
template <class F>
auto guarded(Code code, std::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return fail(code, std::string(what) + ": " + e.what());
  }
}

}  // namespace

struct Store::Impl {
  fs::path root;
  GenerationCounter* counter = nullptr;
  State state;
  std::optional<Error> broken;  // set when a failed write could not be followed by a reload

  const Entry* find(const std::string& id) const {
    auto index = parse_profile_id(id);
    if (!index) return nullptr;
    auto it = state.profiles.find(*index);
    return it == state.profiles.end() ? nullptr : &it->second;
  }

  Result<const Entry*> require(const std::string& id) const {
    const Entry* e = find(id);
    if (!e) return fail(Code::NotFound, "No profile " + id);
    return e;
  }

  // A write failed part-way: the disk may hold files of an uncommitted change. Reloading
  // settles them exactly as a restart would (roll forward or remove).
  tl::unexpected<Error> after_failed_write(Error error) {
    auto reloaded = guarded(Code::Internal, "Failed to reload the store", [&] { return load(root, *counter); });
    if (reloaded) {
      state = std::move(*reloaded);
    } else {
      broken = reloaded.error();
      log::debug("Failed to reload the store after a failed write: " + reloaded.error().message);
    }
    return tl::unexpected(std::move(error));
  }

  // One commit: per-profile files stamped g (write_files), then store.json at g (the commit
  // point), then the counter to g.
  Status commit(State next, const std::function<Status(uint64_t g, State& next)>& write_files) {
    if (broken)
      return fail(broken->code, "The store must be opened again after an earlier failure: " + broken->message);
    uint64_t c = MCIMD_TRY(counter->read());
    if (c + 1 == state.generation) {
      // An earlier commit's increment failed after its store.json rename: complete it.
      c = MCIMD_TRY(counter->increment());
    }
    if (c > state.generation)
      return fail(Code::RollbackDetected, "The TPM counter (" + std::to_string(c) + ") is ahead of the store (" +
                                              std::to_string(state.generation) +
                                              "): another process changed the counter or the store");
    if (c < state.generation)
      return fail(Code::StoreCorrupt, "The TPM counter (" + std::to_string(c) + ") is behind the store (" +
                                          std::to_string(state.generation) + ")");
    if (c == std::numeric_limits<uint64_t>::max()) return fail(Code::Unsupported, "The TPM counter is exhausted");
    const uint64_t g = c + 1;
    next.generation = g;
    Status written = [&]() -> Status {
      try {
        if (write_files) MCIMD_CHECK(write_files(g, next));
        return write_store_file(root, next);
      } catch (const std::exception& e) {
        return fail(Code::Internal, std::string("Failed to write the store: ") + e.what());
      }
    }();
    if (!written) return after_failed_write(written.error());
    state = std::move(next);
    // Committed. Should the increment fail, the next commit (or open) completes it.
    const uint64_t v = MCIMD_TRY(counter->increment());
    if (v != g)
      return fail(Code::StoreCorrupt, "The TPM counter moved to " + std::to_string(v) + " instead of " +
                                          std::to_string(g) + ": another process changed it");
    return {};
  }
};

Store::Store() : impl_(std::make_unique<Impl>()) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

Result<Store> Store::open(const fs::path& root, GenerationCounter& counter) {
  return guarded(Code::StoreCorrupt, "Failed to open the store at " + root.string(), [&]() -> Result<Store> {
    if (root.empty()) return fail(Code::InvalidArgument, "The store path is empty");
    const fs::path absolute = fs::absolute(root);
    auto state = MCIMD_TRY(load(absolute, counter));
    Store store;
    store.impl_->root = absolute;
    store.impl_->counter = &counter;
    store.impl_->state = std::move(state);
    return store;
  });
}

Result<std::optional<Bytes>> Store::pinned_srk_at(const fs::path& root) {
  const fs::path store_path = root / kStoreFileName;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(store_path, ec))) {
    if (ec && ec != std::errc::no_such_file_or_directory)
      return fail(Code::IoError, "Failed to stat " + store_path.string() + ": " + ec.message());
    return std::optional<Bytes>{};
  }
  auto text = MCIMD_TRY(read_store_file(store_path, kMaxStoreFile));
  auto file = MCIMD_TRY(decode_store(text, store_path.string()));
  return file.srk;
}

uint64_t Store::generation() const { return impl_->state.generation; }
const std::optional<Bytes>& Store::pinned_srk() const { return impl_->state.srk; }
std::optional<std::string> Store::active() const { return impl_->state.active; }

Status Store::pin_srk(const Bytes& srk_public) {
  if (srk_public.empty()) return fail(Code::InvalidArgument, "The SRK public is empty");
  if (srk_public.size() > kMaxBlob)
    return fail(Code::InvalidArgument, "The SRK public is larger than " + std::to_string(kMaxBlob) + " bytes");
  if (impl_->state.srk == srk_public) return {};
  return guarded(Code::Internal, "Failed to pin the SRK", [&]() -> Status {
    State next = impl_->state;
    next.srk = srk_public;
    return impl_->commit(std::move(next), nullptr);
  });
}

std::vector<ProfileMetadata> Store::profiles() const {
  std::vector<ProfileMetadata> out;
  out.reserve(impl_->state.profiles.size());
  for (const auto& [index, e] : impl_->state.profiles) out.push_back(e.meta);
  return out;
}

Result<Profile> Store::profile(const std::string& id) const {
  const Entry* e = MCIMD_TRY(impl_->require(id));
  return guarded(Code::StoreCorrupt, "Failed to read profile " + id, [&]() -> Result<Profile> {
    const fs::path dir = profile_dir(impl_->root, id);
    Profile p;
    p.meta = e->meta;
    p.k.public_area = MCIMD_TRY(read_blob(dir / kKPub));
    p.k.private_area = MCIMD_TRY(read_blob(dir / kKPriv));
    p.opc.public_area = MCIMD_TRY(read_blob(dir / kOpcPub));
    p.opc.private_area = MCIMD_TRY(read_blob(dir / kOpcPriv));
    return p;
  });
}

ProfileMetadata Store::new_metadata() const {
  ProfileMetadata m;
  m.index = impl_->state.next_index;
  m.id = profile_id(m.index);
  return m;
}

Status Store::add_profile(const Profile& profile, const aka::SqnArray& sqns) {
  const ProfileMetadata& m = profile.meta;
  MCIMD_CHECK(validate_metadata(m, Code::InvalidArgument, "Profile " + m.id));
  for (const Bytes* blob : {&profile.k.public_area, &profile.k.private_area, &profile.opc.public_area,
                            &profile.opc.private_area})
    if (blob->empty() || blob->size() > kMaxBlob)
      return fail(Code::InvalidArgument, "Profile " + m.id + ": a TPM blob is empty or larger than " +
                                             std::to_string(kMaxBlob) + " bytes");
  if (!same_parameters(sqns.parameters(), m.sqn) || sqns.seq().size() != (std::size_t{1} << m.sqn.ind_bits))
    return fail(Code::InvalidArgument, "Profile " + m.id + ": the SQN array's parameters differ from the metadata's");
  if (impl_->find(m.id)) return fail(Code::AlreadyExists, "Profile " + m.id + " exists already");
  for (const auto& [index, e] : impl_->state.profiles)
    if (e.meta.iccid == m.iccid)
      return fail(Code::AlreadyExists, "A profile with ICCID " + m.iccid + " is installed already (" + e.meta.id + ")");
  if (m.index < impl_->state.next_index)
    return fail(Code::InvalidArgument, "Profile " + m.id + ": index " + std::to_string(m.index) +
                                           " was used before; take a new one from new_metadata()");
  if (m.index == std::numeric_limits<uint32_t>::max())
    return fail(Code::InvalidArgument, "Profile " + m.id + ": no profile index is left");

  return guarded(Code::Internal, "Failed to add profile " + m.id, [&]() -> Status {
    State next = impl_->state;
    next.next_index = m.index + 1;
    next.profiles[m.index].meta = m;
    return impl_->commit(std::move(next), [&](uint64_t g, State& n) -> Status {
      const fs::path dir = profile_dir(impl_->root, m.id);
      std::error_code ec;
      // A folder of this index can only be from an attempt that never committed.
      if (fs::exists(fs::symlink_status(dir, ec))) MCIMD_CHECK(remove_tree(dir));
      MCIMD_CHECK(make_private_dir(dir));
      MCIMD_CHECK(write_file_atomic(dir / kKPub, profile.k.public_area));
      MCIMD_CHECK(write_file_atomic(dir / kKPriv, profile.k.private_area));
      MCIMD_CHECK(write_file_atomic(dir / kOpcPub, profile.opc.public_area));
      MCIMD_CHECK(write_file_atomic(dir / kOpcPriv, profile.opc.private_area));
      MCIMD_CHECK(write_file_atomic(dir / kSqnFileName, encode_sqn(g, sqns)));
      MCIMD_CHECK(write_file_atomic(dir / kMetadataFileName, encode_metadata(g, m)));
      Entry& e = n.profiles[m.index];
      e.meta_generation = g;
      e.sqn_generation = g;
      return {};
    });
  });
}

Status Store::set_state(const std::string& id, ProfileState state) {
  const Entry* e = MCIMD_TRY(impl_->require(id));
  if (e->meta.state == state) return {};
  return guarded(Code::Internal, "Failed to change the state of profile " + id, [&]() -> Status {
    State next = impl_->state;
    const uint32_t index = e->meta.index;
    next.profiles[index].meta.state = state;
    return impl_->commit(std::move(next), [&](uint64_t g, State& n) -> Status {
      Entry& entry = n.profiles[index];
      MCIMD_CHECK(write_file_atomic(profile_dir(impl_->root, id) / kMetadataFileName, encode_metadata(g, entry.meta)));
      entry.meta_generation = g;
      return {};
    });
  });
}

Status Store::set_active(std::optional<std::string> id) {
  if (id) MCIMD_CHECK(impl_->require(*id));
  if (impl_->state.active == id) return {};
  return guarded(Code::Internal, "Failed to change the active profile", [&]() -> Status {
    State next = impl_->state;
    next.active = std::move(id);
    return impl_->commit(std::move(next), nullptr);
  });
}

Status Store::remove_profile(const std::string& id) {
  const Entry* e = MCIMD_TRY(impl_->require(id));
  return guarded(Code::Internal, "Failed to remove profile " + id, [&]() -> Status {
    State next = impl_->state;
    next.profiles.erase(e->meta.index);
    if (next.active == id) next.active.reset();
    MCIMD_CHECK(impl_->commit(std::move(next), nullptr));
    // Committed: the folder is unreferenced now, and the next open removes it if this fails.
    if (auto st = remove_tree(profile_dir(impl_->root, id)); !st)
      log::debug("Failed to remove the folder of profile " + id + ": " + st.error().message + ", ignoring.");
    return {};
  });
}

Result<aka::SqnArray> Store::sqn_array(const std::string& id) const {
  const Entry* e = MCIMD_TRY(impl_->require(id));
  return guarded(Code::StoreCorrupt, "Failed to read the SQN array of profile " + id, [&]() -> Result<aka::SqnArray> {
    const fs::path path = profile_dir(impl_->root, id) / kSqnFileName;
    auto file = MCIMD_TRY(decode_sqn(MCIMD_TRY(read_store_file(path, kMaxSqnFile)), path.string(), e->meta.sqn));
    if (file.generation < e->sqn_generation)
      return fail(Code::RollbackDetected, path.string() + " has generation " + std::to_string(file.generation) +
                                              " but store.json records " + std::to_string(e->sqn_generation) +
                                              ": the file is older than the store (restored from a backup?)");
    if (file.generation != e->sqn_generation)
      return fail(Code::StoreCorrupt, path.string() + " has generation " + std::to_string(file.generation) +
                                          ", not the " + std::to_string(e->sqn_generation) + " store.json records");
    auto sqns = aka::SqnArray::restore(e->meta.sqn, std::move(file.seq));
    if (!sqns) return fail(Code::StoreCorrupt, path.string() + ": " + sqns.error().message);
    return std::move(*sqns);
  });
}

Status Store::save_sqn_array(const std::string& id, const aka::SqnArray& sqns) {
  const Entry* e = MCIMD_TRY(impl_->require(id));
  if (!same_parameters(sqns.parameters(), e->meta.sqn) || sqns.seq().size() != (std::size_t{1} << e->meta.sqn.ind_bits))
    return fail(Code::InvalidArgument, "Profile " + id + ": the SQN array's parameters differ from the profile's");
  return guarded(Code::Internal, "Failed to save the SQN array of profile " + id, [&]() -> Status {
    const uint32_t index = e->meta.index;
    return impl_->commit(impl_->state, [&](uint64_t g, State& n) -> Status {
      MCIMD_CHECK(write_file_atomic(profile_dir(impl_->root, id) / kSqnFileName, encode_sqn(g, sqns)));
      n.profiles[index].sqn_generation = g;
      return {};
    });
  });
}

}  // namespace mcimd::store
