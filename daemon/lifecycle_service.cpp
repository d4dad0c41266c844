// Profile lifecycle: deleting profiles for good (their deletion counters), and the records a
// deletion receipt is made from.
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
  const uint64_t nv_index = uint64_t{config_.tpm.deletion_counter_base} + index;
  if (nv_index > 0x01ffffff)
    return fail(Code::ConfigError, "tpm.deletion-counter-base leaves no NV index for profile " + std::to_string(index));
  for (const auto& m : d.store()->profiles())
    if (m.deletion && m.deletion->nv_index == nv_index)
      return fail(Code::InvalidState, "Deletion counter " + hex_index(static_cast<uint32_t>(nv_index)) +
                                          " is profile " + m.id + "'s");
  auto* tpm = MCIMD_TRY(d.tpm());
  const uint64_t value = MCIMD_TRY(tpm->deletion_counter_prepare(static_cast<uint32_t>(nv_index)));
  return store::DeletionBinding{static_cast<uint32_t>(nv_index), value};
}

Result<store::DeletionRecord> ServiceCore::delete_for_good(Device& d, const std::string& id, const std::string& reason) {
  auto* st = d.store();
  auto profile = MCIMD_TRY(st->profile(id));
  store::DeletionRecord record{profile.meta.iccid, profile.meta.operator_id, profile.meta.index, reason, 0, 0};
  if (const auto& b = profile.meta.deletion) {
    // The point of no return: from here on the TPM refuses these objects' policy, whoever holds
    // a copy of them. A counter already past the binding (an earlier attempt) is not moved again.
    auto* tpm = MCIMD_TRY(d.tpm());
    auto now = tpm->deletion_counter_read(b->nv_index);
    if (now && *now == b->value) now = tpm->deletion_counter_advance(b->nv_index);
    if (!now && now.error().code != Code::NotFound) return tl::unexpected(now.error());
    record.nv_index = b->nv_index;
    record.nv_value = now ? *now : 0;
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
    if (!m.deletion) continue;
    auto now = tpm->deletion_counter_read(m.deletion->nv_index);
    if (now && *now == m.deletion->value) continue;
    if (!now && now.error().code != Code::NotFound) return tl::unexpected(now.error());
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

}  // namespace mcimd::daemon
