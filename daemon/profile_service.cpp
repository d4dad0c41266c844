// Enabling, disabling and deleting profiles, as the operators' rules allow.
#include <chrono>

#include "common/log.hpp"
#include "protocol/provisioning.hpp"

#include "daemon/service_core.hpp"
#include "daemon/service_helpers.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

namespace {

// The operator's rules of a profile (from its package header; a factory profile allows
// everything) for a local change. `replacement` is the profile taking its place as the active
// one, when that is the change. NotAuthorized naming the rule: an administrator of the gateway
// is not the operator, and a subsidised device stays with its operator until the lock ends.
Status check_rules(const store::ProfileMetadata& profile, std::string_view change,
                   const store::ProfileMetadata* replacement = nullptr) {
  const auto& rules = profile.rules;
  auto refused = [&](const std::string& why) {
    return fail(Code::NotAuthorized, "The operator's rules for profile " + profile.id + " (operator " +
                                         profile.operator_id + ") do not allow " + std::string(change) + ": " + why);
  };
  if (const auto lock = subsidy_lock(profile); lock && (!replacement || replacement->operator_id != profile.operator_id))
    return refused("it is locked to its operator until " + protocol::format_timestamp(*lock));
  if (replacement && replacement->profile_class == store::ProfileClass::Bootstrap && !rules.fallback_allowed)
    return refused("fallback to the bootstrap profile is not allowed");
  if (change == "deleting it" && !rules.delete_allowed) return refused("deletion is not allowed");
  if (change != "deleting it" && !rules.disable_allowed) return refused("disabling it is not allowed");
  return {};
}

}  // namespace

void ServiceCore::enable_profile(const std::string& id, api::Reply<void> reply) {
  run_job<void>(
      [id](Device& d) -> Status {
        return d.approved([&]() -> Status {
          auto* st = d.store();
          auto target = MCIMD_TRY(st->profile(id));
          // The active profile gives way only as its operator's rules allow.
          if (auto previous = st->active(); previous && *previous != id) {
            auto current = MCIMD_TRY(st->profile(*previous));
            MCIMD_CHECK(check_rules(current.meta, "switching away from it", &target.meta));
          }
          // One MCIM serves the modem at a time: enabling a profile disables the active one, in
          // the same commit, so no crash can leave two enabled or `active` on a disabled one.
          auto tx = MCIMD_TRY(st->begin());
          auto previous = st->active();
          if (previous && *previous != id) MCIMD_CHECK(tx.set_state(*previous, store::ProfileState::Disabled));
          MCIMD_CHECK(tx.set_state(id, store::ProfileState::Enabled));
          MCIMD_CHECK(tx.set_active(id));
          MCIMD_CHECK(tx.commit());
          d.drop_credentials();
          log::info("Enabled profile " + id);
          return {};
        });
      },
      std::move(reply));
}

void ServiceCore::disable_profile(const std::string& id, api::Reply<void> reply) {
  run_job<void>(
      [id](Device& d) -> Status {
        return d.approved([&]() -> Status {
          auto* st = d.store();
          auto profile = MCIMD_TRY(st->profile(id));
          if (profile.meta.state == store::ProfileState::Enabled) MCIMD_CHECK(check_rules(profile.meta, "disabling it"));
          auto tx = MCIMD_TRY(st->begin());
          MCIMD_CHECK(tx.set_state(id, store::ProfileState::Disabled));
          if (st->active() == id) MCIMD_CHECK(tx.set_active(std::nullopt));
          MCIMD_CHECK(tx.commit());
          d.drop_credentials();
          log::info("Disabled profile " + id);
          return {};
        });
      },
      std::move(reply));
}

void ServiceCore::delete_profile(const std::string& id, api::Reply<void> reply) {
  run_job<void>(
      [this, id](Device& d) -> Status {
        return d.approved([&]() -> Status {
          auto* st = d.store();
          auto profile = MCIMD_TRY(st->profile(id));
          if (profile.meta.state == store::ProfileState::Enabled)
            return fail(Code::InvalidState, "Profile " + id + " is enabled; disable it before deleting it");
          MCIMD_CHECK(check_rules(profile.meta, "deleting it"));
          MCIMD_CHECK(delete_for_good(d, id, "local"));
          return {};
        });
      },
      std::move(reply));
}

}  // namespace mcimd::daemon
