// Store: opening, queries, and the one-change conveniences over Store::Transaction.
#include "mcim-store/store.hpp"

#include <algorithm>

#include "mcim-store/layout.hpp"
#include "mcim-store/recovery.hpp"
#include "mcim-store/store_impl.hpp"

namespace mcimd::store {

namespace fs = std::filesystem;
using namespace detail;

namespace {

Result<Blob> read_blob(const fs::path& root, const BlobRef& ref) {
  Blob blob;
  blob.public_area = MCIMD_TRY(read_object(root, ref.public_area));
  blob.private_area = MCIMD_TRY(read_object(root, ref.private_area));
  return blob;
}

// begin(), one staging step, commit(); a failed step drops the transaction.
template <class F>
Status one_change(Store& store, F&& stage) {
  auto t = MCIMD_TRY(store.begin());
  MCIMD_CHECK(stage(t));
  return t.commit();
}

}  // namespace

const ProfileEntry* Store::Impl::find(const std::string& id) const {
  auto it = std::find_if(state.profiles.begin(), state.profiles.end(),
                         [&](const ProfileEntry& e) { return e.meta.id == id; });
  return it == state.profiles.end() ? nullptr : &*it;
}

Result<const ProfileEntry*> Store::Impl::require(const std::string& id) const {
  const ProfileEntry* e = find(id);
  if (!e) return fail(Code::NotFound, "No profile " + id);
  return e;
}

Store::Store() : impl_(std::make_unique<Impl>()) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

Result<Store> Store::open(const fs::path& root, Anchor& anchor, const StoreOptions& options) {
  return guarded(Code::Internal, "Failed to open the store at " + root.string(), [&]() -> Result<Store> {
    if (root.empty()) return fail(Code::InvalidArgument, "The store path is empty");
    const fs::path absolute = fs::absolute(root);
    Opened opened = MCIMD_TRY(open_store(absolute, anchor, options));
    Store store;
    store.impl_->root = absolute;
    store.impl_->anchor = &anchor;
    store.impl_->state = std::move(opened.state);
    store.impl_->jump = opened.jump;
    return store;
  });
}

Result<std::optional<Bytes>> Store::pinned_srk_at(const fs::path& root) {
  return guarded(Code::Internal, "Failed to read the pinned SRK at " + root.string(),
                 [&]() -> Result<std::optional<Bytes>> {
                   auto text = MCIMD_TRY(read_store_file(root));
                   if (!text) return std::optional<Bytes>();
                   return MCIMD_TRY(decode_store(*text, store_file(root).string())).state.srk;
                 });
}

Result<std::optional<AttestationRecord>> Store::attestation_at(const fs::path& root) {
  using Answer = Result<std::optional<AttestationRecord>>;
  return guarded(Code::Internal, "Failed to read the attestation key at " + root.string(), [&]() -> Answer {
    auto text = MCIMD_TRY(read_store_file(root));
    if (!text) return std::optional<AttestationRecord>();
    const auto state = MCIMD_TRY(decode_store(*text, store_file(root).string())).state;
    if (!state.attestation) return std::optional<AttestationRecord>();
    return AttestationRecord{MCIMD_TRY(read_blob(root, state.attestation->ak)), state.attestation->enrolled_ek_type};
  });
}

uint64_t Store::generation() const { return impl_->state.generation; }
const std::optional<CounterJump>& Store::opened_after_counter_jump() const { return impl_->jump; }
const std::optional<Bytes>& Store::pinned_srk() const { return impl_->state.srk; }
std::optional<std::string> Store::active() const { return impl_->state.active; }
uint64_t Store::last_package_counter() const { return impl_->state.last_package_counter; }
std::vector<InstalledPackage> Store::installed_packages() const { return impl_->state.installed; }
std::vector<DeletionRecord> Store::deletions() const { return impl_->state.deletions; }

std::vector<ProfileMetadata> Store::profiles() const {
  std::vector<ProfileMetadata> out;
  out.reserve(impl_->state.profiles.size());
  for (const auto& e : impl_->state.profiles) out.push_back(e.meta);
  return out;
}

Result<Profile> Store::profile(const std::string& id) const {
  const ProfileEntry* e = MCIMD_TRY(impl_->require(id));
  return guarded(Code::Internal, "Failed to read profile " + id, [&]() -> Result<Profile> {
    Profile p;
    p.meta = e->meta;
    p.k = MCIMD_TRY(read_blob(impl_->root, e->k));
    p.opc = MCIMD_TRY(read_blob(impl_->root, e->opc));
    if (e->previous_k && e->previous_opc) {
      p.previous_k = MCIMD_TRY(read_blob(impl_->root, *e->previous_k));
      p.previous_opc = MCIMD_TRY(read_blob(impl_->root, *e->previous_opc));
    }
    return p;
  });
}

Result<aka::SqnArray> Store::sqn_array(const std::string& id) const {
  const ProfileEntry* e = MCIMD_TRY(impl_->require(id));
  return guarded(Code::Internal, "Failed to read the SQN array of profile " + id, [&]() -> Result<aka::SqnArray> {
    auto sqns = aka::SqnArray::restore(e->meta.sqn, e->seq);
    if (!sqns) return fail(Code::StoreCorrupt, "The SQN array of profile " + id + ": " + sqns.error().message);
    return std::move(*sqns);
  });
}

Result<std::optional<AttestationRecord>> Store::attestation() const {
  const auto& entry = impl_->state.attestation;
  if (!entry) return std::optional<AttestationRecord>();
  using Answer = Result<std::optional<AttestationRecord>>;
  return guarded(Code::Internal, "Failed to read the attestation key", [&]() -> Answer {
    return AttestationRecord{MCIMD_TRY(read_blob(impl_->root, entry->ak)), entry->enrolled_ek_type};
  });
}

ProfileMetadata Store::new_metadata() const {
  ProfileMetadata m;
  m.index = impl_->state.next_index;
  m.id = profile_id(m.index);
  return m;
}

Status Store::add_profile(const Profile& profile, const aka::SqnArray& sqns) {
  return one_change(*this, [&](Transaction& t) { return t.add_profile(profile, sqns); });
}
Status Store::set_state(const std::string& id, ProfileState state) {
  return one_change(*this, [&](Transaction& t) { return t.set_state(id, state); });
}
Status Store::set_active(std::optional<std::string> id) {
  return one_change(*this, [&](Transaction& t) { return t.set_active(std::move(id)); });
}
Status Store::remove_profile(const std::string& id) {
  return one_change(*this, [&](Transaction& t) { return t.remove_profile(id); });
}
Status Store::save_sqn_array(const std::string& id, const aka::SqnArray& sqns) {
  return one_change(*this, [&](Transaction& t) { return t.set_sqn_array(id, sqns); });
}
Status Store::pin_srk(const Bytes& srk_public) {
  return one_change(*this, [&](Transaction& t) { return t.pin_srk(srk_public); });
}
Status Store::set_attestation(const AttestationRecord& record) {
  return one_change(*this, [&](Transaction& t) { return t.set_attestation(record); });
}

}  // namespace mcimd::store
