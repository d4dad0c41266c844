#include "daemon/service_core.hpp"

#include <algorithm>
#include <variant>

#include "daemon/service_helpers.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

ServiceCore::ServiceCore(const Config& config) : config_(config), device_(config.tpm.nv_counter_index) {}

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
  std::size_t enabled = std::count_if(profiles_.begin(), profiles_.end(), [](auto& p) { return p.state == "enabled"; });
  return std::to_string(profiles_.size()) + " profile(s), " + std::to_string(enabled) + " enabled; platform " +
         platform_state_;
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
          auto ctx = MCIMD_TRY(open_tpm());
          // Another (or a cleared) TPM first: its NV counter means nothing for this store, so
          // judging the store by it would only give a misleading rollback error.
          auto srk_now = MCIMD_TRY(ctx->srk_public());
          auto pinned = MCIMD_TRY(store::Store::pinned_srk_at(config_.store));
          if (pinned && *pinned != srk_now)
            return fail(Code::TpmMismatch,
                        "The TPM's storage root key differs from the one pinned in the store "
                        "(another TPM, or a cleared one); the profiles cannot be used here");
          if (config_.tpm.key_protection == "tpm-aes") {
            auto supported = ctx->check_encrypt_decrypt_support();
            if (!supported)
              return fail(supported.error().code,
                          supported.error().message + " (set tpm.key-protection: sealed to keep K sealed instead)");
          }
          CounterAttachment attached(device_.counter, *ctx);
          device_.store.emplace(MCIMD_TRY(store::Store::open(config_.store, device_.counter)));
          if (!device_.store->pinned_srk()) MCIMD_CHECK(device_.store->pin_srk(srk_now));
          return std::monostate{};
        }();
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
