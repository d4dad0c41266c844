#include "daemon/service_core.hpp"

#include <algorithm>
#include <variant>

#include "common/log.hpp"
#include "daemon/service_helpers.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

ServiceCore::ServiceCore(const Config& config) : config_(config), device_(config_) {}

ServiceCore::~ServiceCore() { stop(); }

Result<std::unique_ptr<ServiceCore>> ServiceCore::create(sd_event* loop, const Config& config) {
  MCIMD_CHECK(tpm::parse_pcr_selection(config.tpm.pcrs));
  std::unique_ptr<ServiceCore> core(new ServiceCore(config));
  core->worker_ = MCIMD_TRY(TpmWorker::create(loop, config.queue_limit));
  return core;
}

void ServiceCore::stop() {
  if (worker_) worker_->stop();
}

std::string ServiceCore::status_line() const {
  std::size_t enabled = std::count_if(profiles_.begin(), profiles_.end(), [](auto& p) { return p.state == api::ProfileState::Enabled; });
  return std::to_string(profiles_.size()) + " profile(s), " + std::to_string(enabled) + " enabled; platform " +
         std::string(api::to_string(platform_state_));
}

std::optional<api::ProfileInfo> ServiceCore::find_profile(uint32_t index) const {
  for (auto& p : profiles_)
    if (p.index == index) return p;
  return std::nullopt;
}

void ServiceCore::start(std::function<void(Status)> done) {
  auto snapshot = std::make_shared<Snapshot>();
  auto st = worker_->submit<std::monostate>(
      [this, snapshot]() -> Result<std::monostate> {
        auto r = [&]() -> Result<std::monostate> {
          auto* ctx = MCIMD_TRY(device_.tpm());
          if (config_.tpm.key_protection == "tpm-aes") {
            auto supported = ctx->check_encrypt_decrypt_support();
            if (!supported)
              return fail(supported.error().code,
                          supported.error().message + " (set tpm.key-protection: sealed to keep K sealed instead)");
          }
          // mcimd needs the owner hierarchy's empty authorization once, to create the SRK and the
          // counter; left empty, any TPM user can undefine the counter (the store then refuses
          // itself) or evict the SRK.
          if (auto set = ctx->owner_auth_set(); set && !*set)
            log::warning("The TPM's owner authorization is empty: any TPM user can undefine mcimd's anti-rollback "
                         "counter; set one once the store exists (docs/operations.md)");
          std::vector<std::string> skipped;
          MCIMD_CHECK(device_.load_policies(skipped));
          for (const auto& why : skipped) log::warning("Ignoring a kept PCR policy: " + why);
          if (!device_.policies().has_authority()) {
            log::warning("No PCR policy authority is configured (tpm.policy-authority): profiles cannot be "
                         "installed or used until one is");
            return std::monostate{};
          }
          // A deletion a crash interrupted after its point of no return is completed first.
          auto unlocked = device_.approved([&]() -> Status { return finish_deletions(device_); });
          if (!unlocked) {
            // A platform no kept policy approves is a state to report, not a reason to stop: the
            // operator must still be able to attest it, and a newly signed policy unlocks it.
            if (unlocked.error().code != Code::PlatformStateChanged) return tl::unexpected(unlocked.error());
            log::warning("The store stays locked: " + unlocked.error().message);
            device_.platform_state = api::PlatformState::Changed;
          }
          return std::monostate{};
        }();
        device_.after_job();
        *snapshot = take_snapshot();
        return r;
      },
      [this, done, snapshot](Result<std::monostate> r) {
        apply(std::move(*snapshot));
        if (r) done({});
        else done(tl::unexpected(r.error()));
      });
  if (!st) done(st);
}

}  // namespace mcimd::daemon
