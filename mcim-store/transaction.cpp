// Store::Transaction: record changes staged in memory, then one commit — new objects, store.json
// (the commit point), one counter increment.
#include <algorithm>
#include <limits>
#include <set>

#include "common/file.hpp"
#include "common/log.hpp"
#include "mcim-store/layout.hpp"
#include "mcim-store/recovery.hpp"
#include "mcim-store/store_impl.hpp"

namespace mcimd::store {

namespace fs = std::filesystem;
using namespace detail;

namespace {

Status check_blob(const Blob& blob, const std::string& what) {
  for (const Bytes* part : {&blob.public_area, &blob.private_area})
    if (part->empty() || part->size() > kMaxBlob)
      return fail(Code::InvalidArgument,
                  what + ": a TPM blob is empty or larger than " + std::to_string(kMaxBlob) + " bytes");
  return {};
}

Status check_sqns(const aka::SqnArray& sqns, const aka::SqnParameters& params, const std::string& id) {
  if (!same_parameters(sqns.parameters(), params) || sqns.seq().size() != (std::size_t{1} << params.ind_bits))
    return fail(Code::InvalidArgument, "Profile " + id + ": the SQN array's parameters differ from the profile's");
  return {};
}

// Names the blob's parts by their hashes and keeps their bytes for the commit.
BlobRef stage_blob(const Blob& blob, std::map<ObjectName, Bytes>& staged) {
  BlobRef ref{object_name(blob.public_area), object_name(blob.private_area)};
  staged.emplace(ref.public_area, blob.public_area);
  staged.emplace(ref.private_area, blob.private_area);
  return ref;
}

std::set<ObjectName> objects_of(const State& state) {
  auto names = referenced_objects(state);
  return {names.begin(), names.end()};
}

// Runs one staging step of an open transaction; T is Transaction::Impl, deduced.
template <class T, class F>
Status staging(T* t, std::string_view what, F&& step) {
  if (!t || t->ended) return fail(Code::InvalidState, "The transaction has ended; begin a new one");
  return guarded(Code::Internal, what, [&]() -> Status { return step(*t); });
}

}  // namespace

struct Store::Transaction::Impl {
  Store::Impl* store = nullptr;
  State next;
  std::map<ObjectName, Bytes> staged;  // bytes of the objects this transaction may add
  bool ended = false;

  Result<ProfileEntry*> require(const std::string& id) {
    auto it = std::find_if(next.profiles.begin(), next.profiles.end(),
                           [&](const ProfileEntry& e) { return e.meta.id == id; });
    if (it == next.profiles.end()) return fail(Code::NotFound, "No profile " + id);
    return &*it;
  }
};

Store::Transaction::Transaction(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Transaction::Transaction(Transaction&&) noexcept = default;
Store::Transaction::~Transaction() {
  if (impl_ && !impl_->ended) impl_->store->in_transaction = false;
}

Result<Store::Transaction> Store::begin() {
  if (impl_->in_transaction) return fail(Code::InvalidState, "Another transaction of this store is open");
  return guarded(Code::Internal, "Failed to begin a transaction", [&]() -> Result<Transaction> {
    auto t = std::make_unique<Transaction::Impl>();
    t->store = impl_.get();
    t->next = impl_->state;
    impl_->in_transaction = true;
    return Transaction(std::move(t));
  });
}

Status Store::Transaction::add_profile(const Profile& profile, const aka::SqnArray& sqns) {
  return staging(impl_.get(), "Failed to stage profile " + profile.meta.id, [&](Impl& t) -> Status {
    const ProfileMetadata& m = profile.meta;
    const std::string what = "Profile " + m.id;
    MCIMD_CHECK(validate_metadata(m, Code::InvalidArgument, what));
    MCIMD_CHECK(check_blob(profile.k, what));
    MCIMD_CHECK(check_blob(profile.opc, what));
    MCIMD_CHECK(check_sqns(sqns, m.sqn, m.id));
    if (t.require(m.id)) return fail(Code::AlreadyExists, what + " exists already");
    for (const auto& e : t.next.profiles)
      if (e.meta.iccid == m.iccid)
        return fail(Code::AlreadyExists,
                    "A profile with ICCID " + m.iccid + " is installed already (" + e.meta.id + ")");
    if (m.index < t.next.next_index)
      return fail(Code::InvalidArgument, what + ": index " + std::to_string(m.index) +
                                             " was used before; take a new one from new_metadata()");
    if (m.index == std::numeric_limits<uint32_t>::max())
      return fail(Code::InvalidArgument, what + ": no profile index is left");
    // Every index so far is below next_index, so appending keeps the list in index order.
    if (m.previous) return fail(Code::InvalidArgument, what + ": a new profile has no previous credentials");
    t.next.profiles.push_back(ProfileEntry{m, sqns.seq(), stage_blob(profile.k, t.staged),
                                           stage_blob(profile.opc, t.staged), std::nullopt, std::nullopt});
    t.next.next_index = m.index + 1;
    return {};
  });
}

Status Store::Transaction::set_state(const std::string& id, ProfileState state) {
  return staging(impl_.get(), "Failed to stage the state of profile " + id, [&](Impl& t) -> Status {
    MCIMD_TRY(t.require(id))->meta.state = state;
    return {};
  });
}

Status Store::Transaction::set_active(std::optional<std::string> id) {
  return staging(impl_.get(), "Failed to stage the active profile", [&](Impl& t) -> Status {
    if (id) MCIMD_CHECK(t.require(*id));
    t.next.active = std::move(id);
    return {};
  });
}

Status Store::Transaction::remove_profile(const std::string& id) {
  return staging(impl_.get(), "Failed to stage the removal of profile " + id, [&](Impl& t) -> Status {
    ProfileEntry* e = MCIMD_TRY(t.require(id));
    t.next.profiles.erase(t.next.profiles.begin() + (e - t.next.profiles.data()));
    if (t.next.active == id) t.next.active.reset();
    // A replacement whose old profile is gone has nothing left to replace.
    for (auto& other : t.next.profiles)
      if (other.meta.replaces == id) other.meta.replaces.reset();
    return {};
  });
}

Status Store::Transaction::set_sqn_array(const std::string& id, const aka::SqnArray& sqns) {
  return staging(impl_.get(), "Failed to stage the SQN array of profile " + id, [&](Impl& t) -> Status {
    ProfileEntry* e = MCIMD_TRY(t.require(id));
    MCIMD_CHECK(check_sqns(sqns, e->meta.sqn, id));
    e->seq = sqns.seq();
    return {};
  });
}

Status Store::Transaction::set_replaces(const std::string& id, std::optional<std::string> replaces) {
  return staging(impl_.get(), "Failed to stage what profile " + id + " replaces", [&](Impl& t) -> Status {
    ProfileEntry* e = MCIMD_TRY(t.require(id));
    if (replaces) {
      if (*replaces == id) return fail(Code::InvalidArgument, "A profile cannot replace itself");
      if (!t.require(*replaces)) return fail(Code::InvalidArgument, "Profile " + *replaces + " is not in the store");
    }
    e->meta.replaces = std::move(replaces);
    return {};
  });
}

Status Store::Transaction::set_command_counter(const std::string& id, uint64_t counter) {
  return staging(impl_.get(), "Failed to stage the command counter of profile " + id, [&](Impl& t) -> Status {
    ProfileEntry* e = MCIMD_TRY(t.require(id));
    if (counter <= e->meta.command_counter)
      return fail(Code::Replayed, "Counter " + std::to_string(counter) + " is not above the last one accepted for "
                                  "profile " + id + ", " + std::to_string(e->meta.command_counter));
    e->meta.command_counter = counter;
    return {};
  });
}

Status Store::Transaction::rekey(const std::string& id, const NewCredentials& next) {
  return staging(impl_.get(), "Failed to stage new credentials for profile " + id, [&](Impl& t) -> Status {
    ProfileEntry* e = MCIMD_TRY(t.require(id));
    if (e->meta.previous)
      return fail(Code::InvalidState, "Profile " + id + " keeps previous credentials already: its last re-key has "
                                      "not authenticated yet");
    MCIMD_CHECK(check_blob(next.k, "K"));
    MCIMD_CHECK(check_blob(next.opc, "OPc"));
    e->meta.previous = PreviousCredentials{e->meta.deletion, e->meta.algorithm, e->meta.key_protection};
    e->previous_k = e->k;
    e->previous_opc = e->opc;
    e->k = stage_blob(next.k, t.staged);
    e->opc = stage_blob(next.opc, t.staged);
    e->meta.deletion = next.deletion;
    e->meta.algorithm = next.algorithm;
    e->meta.key_protection = next.key_protection;
    return {};
  });
}

Status Store::Transaction::drop_previous(const std::string& id) {
  return staging(impl_.get(), "Failed to stage profile " + id + "'s previous credentials' removal", [&](Impl& t) -> Status {
    ProfileEntry* e = MCIMD_TRY(t.require(id));
    if (!e->meta.previous) return fail(Code::InvalidState, "Profile " + id + " keeps no previous credentials");
    e->meta.previous.reset();
    e->previous_k.reset();
    e->previous_opc.reset();
    return {};
  });
}

Status Store::Transaction::roll_back(const std::string& id) {
  return staging(impl_.get(), "Failed to stage profile " + id + "'s roll-back", [&](Impl& t) -> Status {
    ProfileEntry* e = MCIMD_TRY(t.require(id));
    if (!e->meta.previous) return fail(Code::InvalidState, "Profile " + id + " keeps no previous credentials");
    e->k = *e->previous_k;
    e->opc = *e->previous_opc;
    e->meta.deletion = e->meta.previous->deletion;
    e->meta.algorithm = e->meta.previous->algorithm;
    e->meta.key_protection = e->meta.previous->key_protection;
    e->meta.previous.reset();
    e->previous_k.reset();
    e->previous_opc.reset();
    return {};
  });
}

Status Store::Transaction::record_deletion(const DeletionRecord& record) {
  return staging(impl_.get(), "Failed to stage the deletion record of ICCID " + record.iccid, [&](Impl& t) -> Status {
    if (!valid_deletion_reason(record.reason))
      return fail(Code::InvalidArgument, "Deletion reason '" + record.reason + "' is not one the store knows");
    t.next.deletions.push_back(record);
    if (t.next.deletions.size() > kMaxDeletionRecords) t.next.deletions.erase(t.next.deletions.begin());
    return {};
  });
}

Status Store::Transaction::pin_srk(const Bytes& srk_public) {
  return staging(impl_.get(), "Failed to stage the SRK", [&](Impl& t) -> Status {
    if (srk_public.empty()) return fail(Code::InvalidArgument, "The SRK public is empty");
    if (srk_public.size() > kMaxBlob)
      return fail(Code::InvalidArgument, "The SRK public is larger than " + std::to_string(kMaxBlob) + " bytes");
    t.next.srk = srk_public;
    return {};
  });
}

Status Store::Transaction::set_attestation(const AttestationRecord& record) {
  return staging(impl_.get(), "Failed to stage the attestation key", [&](Impl& t) -> Status {
    MCIMD_CHECK(check_blob(record.ak, "The attestation key"));
    if (record.enrolled_ek_type && !valid_ek_type(*record.enrolled_ek_type))
      return fail(Code::InvalidArgument, "The enrolled EK type must be \"ecc\" or \"rsa\"");
    t.next.attestation = AttestationEntry{stage_blob(record.ak, t.staged), record.enrolled_ek_type};
    return {};
  });
}

Status Store::Transaction::record_package(const InstalledPackage& package) {
  return staging(impl_.get(), "Failed to stage the installed package " + package.package_id,
                 [&](Impl& t) -> Status {
                   if (!valid_package_id(package.package_id))
                     return fail(Code::InvalidArgument, "A package id must be 1-64 characters of [A-Za-z0-9._-]");
                   if (package.package_sha256.size() != 32)
                     return fail(Code::InvalidArgument, "A package digest must be 32 bytes");
                   MCIMD_CHECK(t.require(package.profile_id));
                   if (package.counter <= t.next.last_package_counter)
                     return fail(Code::Replayed, "Package counter " + std::to_string(package.counter) +
                                                     " is not above the last accepted, " +
                                                     std::to_string(t.next.last_package_counter));
                   t.next.last_package_counter = package.counter;
                   t.next.installed.push_back(package);
                   if (t.next.installed.size() > kMaxInstalledPackages)
                     t.next.installed.erase(t.next.installed.begin());
                   return {};
                 });
}

Status Store::Transaction::commit() {
  return staging(impl_.get(), "Failed to commit the store", [&](Impl& t) -> Status {
    t.ended = true;
    t.store->in_transaction = false;
    return t.store->commit(std::move(t.next), t.staged);
  });
}

namespace {

// One file operation of a commit, with the exceptions it may throw turned into its error.
template <class F>
auto io_step(std::string_view what, F&& op) -> decltype(op()) {
  return guarded(Code::IoError, what, std::forward<F>(op));
}

}  // namespace

Status Store::Impl::commit(State next, const std::map<ObjectName, Bytes>& staged) {
  if (broken)
    return fail(broken->code, "The store must be opened again after an earlier failure: " + broken->message);
  next.generation = state.generation;
  next.boot_counts = state.boot_counts;
  if (canonical_state(next) == canonical_state(state)) return {};  // no change: nothing to write
  if (auto why = invariant_violation(next)) return fail(Code::InvalidState, "Refusing to commit: " + *why);

  uint64_t c = MCIMD_TRY(anchor->counter());
  if (c + 1 == state.generation) {
    // An earlier commit's increment failed after its store.json rename: complete it first.
    MCIMD_CHECK(fsync_dir(root));
    MCIMD_CHECK(increment_to(*anchor, state.generation));
    c = state.generation;
  }
  if (c > state.generation)
    return fail(Code::RollbackDetected, "The TPM counter (" + std::to_string(c) + ") is ahead of the store (" +
                                            std::to_string(state.generation) +
                                            "): another process changed the counter or the store");
  if (c < state.generation)
    return fail(Code::StoreCorrupt, "The TPM counter (" + std::to_string(c) + ") is behind the store (" +
                                        std::to_string(state.generation) + ")");
  if (c == std::numeric_limits<uint64_t>::max()) return fail(Code::Unsupported, "The TPM counter is exhausted");
  next.generation = c + 1;
  next.boot_counts = MCIMD_TRY(anchor->boot_counts());
  const std::string text = MCIMD_TRY(encode_store(next, *anchor));
  if (text.size() > kMaxStoreFile)
    return fail(Code::InvalidArgument, "The store would grow beyond " + std::to_string(kMaxStoreFile) + " bytes");

  // Objects first: store.json may only name what is already on disk.
  const std::set<ObjectName> before = objects_of(state);
  const std::set<ObjectName> after = objects_of(next);
  for (const auto& name : after) {
    if (before.contains(name)) continue;  // written by an earlier commit, checked at open
    auto bytes = staged.find(name);
    if (bytes == staged.end()) return fail(Code::Internal, "Object " + name + " is referenced but was never staged");
    Status written = io_step("Failed to write an object", [&] { return write_object(root, bytes->second); });
    if (!written) {
      collect_garbage(root, before);  // the objects this commit wrote so far
      return written;
    }
  }
  if (Status written = io_step("Failed to write store.json", [&] { return write_store_file(root, text); }); !written)
    return after_failed_write(std::move(written).error(), std::move(next), text);

  // Committed. Should the increment fail, the next commit (or open) completes it.
  state = std::move(next);
  Status sealed = increment_to(*anchor, state.generation);
  if (!std::includes(after.begin(), after.end(), before.begin(), before.end())) collect_garbage(root, after);
  return sealed;
}

Status Store::Impl::after_failed_write(Error error, State next, const std::string& text) {
  // The rename is atomic: store.json holds the old state or this one. Settle as a restart would.
  auto on_disk = io_step("Failed to read store.json back",
                         [&]() -> Result<std::optional<std::string>> { return read_store_file(root); });
  if (!on_disk || !*on_disk) {
    broken = on_disk ? Error{Code::StoreCorrupt, "store.json vanished after a failed write", std::nullopt}
                     : on_disk.error();
    log::debug("Failed to tell whether a failed write committed: " + broken->message);
    return tl::unexpected(std::move(error));
  }
  if (**on_disk == text) {
    // Past the commit point: the change stays. The counter follows once the rename is known to
    // be on disk; if it cannot be, the next commit or open completes the increment.
    state = std::move(next);
    if (Status synced = fsync_dir(root); !synced || !increment_to(*anchor, state.generation))
      log::debug("Left the increment of generation " + std::to_string(state.generation) + " to the next commit");
  }
  collect_garbage(root, objects_of(state));
  return tl::unexpected(std::move(error));
}

}  // namespace mcimd::store
