// Enabling, disabling and deleting profiles.
#include "common/log.hpp"

#include "daemon/service_core.hpp"
#include "daemon/service_helpers.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

void ServiceCore::enable_profile(const std::string& id, api::Reply<void> reply) {
  run_job<void>(
      [id](tpm::Context&, store::Store& st) -> Status {
        MCIMD_CHECK(st.profile(id));
        // One MCIM serves the modem at a time: enabling a profile disables the active one.
        auto previous = st.active();
        if (previous && *previous != id) MCIMD_CHECK(st.set_state(*previous, store::ProfileState::Disabled));
        MCIMD_CHECK(st.set_state(id, store::ProfileState::Enabled));
        MCIMD_CHECK(st.set_active(id));
        log::info("Enabled profile " + id);
        return {};
      },
      std::move(reply));
}

void ServiceCore::disable_profile(const std::string& id, api::Reply<void> reply) {
  run_job<void>(
      [id](tpm::Context&, store::Store& st) -> Status {
        MCIMD_CHECK(st.profile(id));
        MCIMD_CHECK(st.set_state(id, store::ProfileState::Disabled));
        if (st.active() == id) MCIMD_CHECK(st.set_active(std::nullopt));
        log::info("Disabled profile " + id);
        return {};
      },
      std::move(reply));
}

void ServiceCore::delete_profile(const std::string& id, api::Reply<void> reply) {
  run_job<void>(
      [id](tpm::Context&, store::Store& st) -> Status {
        auto profile = MCIMD_TRY(st.profile(id));
        if (profile.meta.state == store::ProfileState::Enabled)
          return fail(Code::InvalidState, "Profile " + id + " is enabled; disable it before deleting it");
        MCIMD_CHECK(st.remove_profile(id));
        log::info("Deleted profile " + id);
        return {};
      },
      std::move(reply));
}

}  // namespace mcimd::daemon
