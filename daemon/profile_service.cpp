// Enabling, disabling and deleting profiles.
#include "common/log.hpp"

#include "daemon/service_core.hpp"
#include "daemon/service_helpers.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

void ServiceCore::enable_profile(const std::string& id, api::Reply<void> reply) {
  run_job<void>(
      [id](Device& d) -> Status {
        return d.approved([&]() -> Status {
          auto* st = d.store();
          MCIMD_CHECK(st->profile(id));
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
          MCIMD_CHECK(st->profile(id));
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
      [id](Device& d) -> Status {
        return d.approved([&]() -> Status {
          auto* st = d.store();
          auto profile = MCIMD_TRY(st->profile(id));
          if (profile.meta.state == store::ProfileState::Enabled)
            return fail(Code::InvalidState, "Profile " + id + " is enabled; disable it before deleting it");
          MCIMD_CHECK(st->remove_profile(id));
          d.drop_credentials();
          log::info("Deleted profile " + id);
          return {};
        });
      },
      std::move(reply));
}

}  // namespace mcimd::daemon
