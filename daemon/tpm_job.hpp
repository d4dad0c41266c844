#pragma once
// ServiceCore::run_job: every TPM and store access runs as one job on the TPM worker thread.
#include "common/log.hpp"
#include "daemon/service_core.hpp"

namespace mcimd::daemon {

template <class T>
void ServiceCore::run_job(std::function<Result<T>(tpm::Context&, store::Store&)> fn, api::Reply<T> reply) {
  auto snapshot = std::make_shared<Snapshot>();
  auto st = worker_->submit<T>(
      [this, fn = std::move(fn), snapshot]() -> Result<T> {
        auto result = [&]() -> Result<T> {
          if (!device_.store) return fail(Code::InvalidState, "The store is not open");
          auto ctx = MCIMD_TRY(open_tpm());
          CounterAttachment attached(device_.counter, *ctx);
          auto r = fn(*ctx, *device_.store);
          if (ctx->live_handles() != 0)
            log::debug("TPM job left " + std::to_string(ctx->live_handles()) + " handle(s) loaded");
          return r;
        }();
        if (!result && result.error().code == Code::PlatformStateChanged) device_.platform_state = "changed";
        *snapshot = take_snapshot();
        return result;
      },
      [this, reply, snapshot](Result<T> r) {
        apply(std::move(*snapshot));
        reply(std::move(r));
      });
  if (!st) reply(tl::unexpected(st.error()));
}


}  // namespace mcimd::daemon
