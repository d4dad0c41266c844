// Signed PCR policies: keeping a new one (a firmware update's), and listing the kept ones.
#include "common/log.hpp"
#include "daemon/service_core.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

void ServiceCore::add_pcr_policy(std::string document, api::Reply<std::string> reply) {
  run_job<std::string>(
      [document = std::move(document)](Device& d) -> Result<std::string> {
        auto id = MCIMD_TRY(d.policies().add(document));
        log::info("Kept signed PCR policy " + id);
        // A policy update drops every secret held under the old selection; the next use (or the
        // unlock below, when the store was locked) selects again.
        d.lock();
        auto unlocked = d.approved([]() -> Status { return {}; });
        if (!unlocked && unlocked.error().code != Code::PlatformStateChanged) return tl::unexpected(unlocked.error());
        if (!unlocked) log::info("The store stays locked: " + unlocked.error().message);
        return id;
      },
      std::move(reply));
}

void ServiceCore::list_pcr_policies(api::Reply<std::vector<api::PcrPolicyInfo>> reply) {
  run_job<std::vector<api::PcrPolicyInfo>>(
      [](Device& d) -> Result<std::vector<api::PcrPolicyInfo>> {
        std::vector<api::PcrPolicyInfo> out;
        for (auto& p : d.policies().list()) out.push_back(api::PcrPolicyInfo{p.id, p.pcrs, p.active});
        return out;
      },
      std::move(reply));
}

}  // namespace mcimd::daemon
