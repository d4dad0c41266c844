// Profile lifecycle: deleting profiles for good (their deletion counters), and the records a
// deletion receipt is made from.
#include <set>

#include "common/log.hpp"

#include "daemon/service_core.hpp"
#include "daemon/service_helpers.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

namespace {

std::string hex_index(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

}  // namespace

Result<store::DeletionBinding> ServiceCore::deletion_binding_for(Device& d, uint32_t index) {
  // The counters profiles use, with the ones their previous credentials (a re-key) still use.
  std::set<uint64_t> used;
  for (const auto& m : d.store()->profiles()) {
    if (m.deletion) used.insert(m.deletion->nv_index);
    if (m.previous && m.previous->deletion) used.insert(m.previous->deletion->nv_index);
  }
  // Normally base + the profile's index; a re-key takes one too, so the next free one from there.
  uint64_t nv_index = uint64_t{config_.tpm.deletion_counter_base} + index;
  while (used.count(nv_index)) ++nv_index;
  if (nv_index > 0x01ffffff)
    return fail(Code::ConfigError, "tpm.deletion-counter-base leaves no NV index for profile " + std::to_string(index));
  auto* tpm = MCIMD_TRY(d.tpm());
  const uint64_t value = MCIMD_TRY(tpm->deletion_counter_prepare(static_cast<uint32_t>(nv_index)));
  return store::DeletionBinding{static_cast<uint32_t>(nv_index), value};
}

namespace {

// The counter's value now: nullopt when it is gone.
Result<std::optional<uint64_t>> counter_now(tpm::Context& tpm, const store::DeletionBinding& b) {
  auto now = tpm.deletion_counter_read(b.nv_index);
  if (!now) {
    if (now.error().code == Code::NotFound) return std::optional<uint64_t>();
    return tl::unexpected(now.error());
  }
  return std::optional<uint64_t>(*now);
}

// Whether objects bound to `b` are still usable: their counter holds their value.
Result<bool> alive(tpm::Context& tpm, const std::optional<store::DeletionBinding>& b) {
  if (!b) return true;
  auto now = MCIMD_TRY(counter_now(tpm, *b));
  return now && *now == b->value;
}

// Advances a binding's counter unless it moved already (an earlier attempt): from then on the
// TPM refuses its objects' policy, whoever holds a copy of them. The counter's value after it,
// nullopt when the counter is gone.
Result<std::optional<uint64_t>> retire(tpm::Context& tpm, const store::DeletionBinding& b) {
  auto now = MCIMD_TRY(counter_now(tpm, b));
  if (now && *now == b.value) now = MCIMD_TRY(tpm.deletion_counter_advance(b.nv_index));
  return now;
}
Status retire(tpm::Context& tpm, const std::optional<store::DeletionBinding>& b) {
  if (b) MCIMD_CHECK(retire(tpm, *b));
  return {};
}

}  // namespace

Result<store::DeletionRecord> ServiceCore::delete_for_good(Device& d, const std::string& id, const std::string& reason) {
  auto* st = d.store();
  auto profile = MCIMD_TRY(st->profile(id));
  store::DeletionRecord record{profile.meta.iccid, profile.meta.operator_id, profile.meta.index, reason, 0, 0};
  if (const auto& b = profile.meta.deletion) {
    // The point of no return.
    const auto now = MCIMD_TRY(retire(*MCIMD_TRY(d.tpm()), *b));
    record.nv_index = b->nv_index;
    record.nv_value = now.value_or(0);
  }
  d.drop_credentials();
  auto tx = MCIMD_TRY(st->begin());
  MCIMD_CHECK(tx.remove_profile(id));
  MCIMD_CHECK(tx.record_deletion(record));
  MCIMD_CHECK(tx.commit());
  log::info("Deleted profile " + id + " (ICCID " + record.iccid + ", operator " + record.operator_id + ", " + reason +
            (record.nv_index ? "; deletion counter " + hex_index(record.nv_index) + " now " +
                                   std::to_string(record.nv_value)
                             : std::string("; no deletion counter")) +
            ")");
  return record;
}


Status ServiceCore::finish_deletions(Device& d) {
  auto* st = d.store();
  auto* tpm = MCIMD_TRY(d.tpm());
  for (const auto& m : st->profiles()) {
    const bool current = MCIMD_TRY(alive(*tpm, m.deletion));
    const bool previous = m.previous && MCIMD_TRY(alive(*tpm, m.previous->deletion));
    if (m.previous && !previous) {
      // A re-key settled before a crash: its previous credentials were retired (or the new ones
      // rolled back with both counters gone, which leaves nothing usable).
      log::warning("Profile " + m.id + "'s previous credentials' deletion counter has moved on: dropping them");
      auto tx = MCIMD_TRY(st->begin());
      MCIMD_CHECK(tx.drop_previous(m.id));
      MCIMD_CHECK(tx.commit());
    } else if (m.previous && !current) {
      log::warning("Profile " + m.id + "'s new credentials' deletion counter has moved on: rolling back to the "
                   "previous ones");
      auto tx = MCIMD_TRY(st->begin());
      MCIMD_CHECK(tx.roll_back(m.id));
      MCIMD_CHECK(tx.commit());
      continue;
    }
    if (current) continue;
    // The counter moved on: the deletion got past its point of no return before a crash, or
    // something else advanced it. Either way these objects are unusable: finish the removal.
    bool replaced = false;
    for (const auto& other : st->profiles()) replaced = replaced || other.replaces == m.id;
    log::warning("Profile " + m.id + "'s deletion counter " + hex_index(m.deletion->nv_index) +
                 " has moved on: completing its deletion");
    MCIMD_CHECK(delete_for_good(d, m.id, replaced ? "change-of-subscription" : "local"));
  }
  return {};
}

Result<store::Profile> ServiceCore::previous_credentials_of(const store::Profile& profile) {
  if (!profile.meta.previous || !profile.previous_k || !profile.previous_opc)
    return fail(Code::InvalidState, "Profile " + profile.meta.id + " keeps no previous credentials");
  store::Profile p = profile;
  p.k = *profile.previous_k;
  p.opc = *profile.previous_opc;
  p.meta.deletion = profile.meta.previous->deletion;
  p.meta.algorithm = profile.meta.previous->algorithm;
  p.meta.key_protection = profile.meta.previous->key_protection;
  p.meta.previous.reset();
  p.previous_k.reset();
  p.previous_opc.reset();
  return p;
}

Status ServiceCore::roll_back_rekey(Device& d, const store::Profile& profile, const aka::SqnArray* sqns) {
  auto* st = d.store();
  MCIMD_CHECK(retire(*MCIMD_TRY(d.tpm()), profile.meta.deletion));
  d.drop_credentials();
  auto tx = MCIMD_TRY(st->begin());
  MCIMD_CHECK(tx.roll_back(profile.meta.id));
  if (sqns) MCIMD_CHECK(tx.set_sqn_array(profile.meta.id, *sqns));
  MCIMD_CHECK(tx.commit());
  log::warning("Profile " + profile.meta.id + "'s new credentials failed to authenticate where the previous ones "
               "passed: rolled back to the previous credentials (the new ones are retired for good)");
  return {};
}

Status ServiceCore::retire_previous_credentials(Device& d, const store::Profile& profile, const aka::SqnArray& sqns) {
  auto* st = d.store();
  MCIMD_CHECK(retire(*MCIMD_TRY(d.tpm()), profile.meta.previous->deletion));
  auto tx = MCIMD_TRY(st->begin());
  MCIMD_CHECK(tx.drop_previous(profile.meta.id));
  MCIMD_CHECK(tx.set_sqn_array(profile.meta.id, sqns));
  MCIMD_CHECK(tx.commit());
  log::info("Profile " + profile.meta.id + "'s new credentials authenticated: its previous ones are retired for good");
  return {};
}

}  // namespace mcimd::daemon
