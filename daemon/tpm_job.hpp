#pragma once
// ServiceCore::run_job: every TPM and store access runs as one job on the TPM worker thread,
// with the device state the worker keeps between jobs.
#include "common/log.hpp"
#include "daemon/service_core.hpp"

namespace mcimd::daemon {

template <class T>
void ServiceCore::run_job(std::function<Result<T>(Device&)> fn, api::Reply<T> reply) {
  auto snapshot = std::make_shared<Snapshot>();
  auto st = worker_->submit<T>(
      [this, fn = std::move(fn), snapshot]() -> Result<T> {
        // However fn ends (an exception becomes an Internal answer in the worker), a lost TPM
        // connection is dropped and the loop thread learns the state the job left.
        struct Finish {
          ServiceCore& core;
          Snapshot& snapshot;
          ~Finish() {
            core.device_.after_job();
            try {
              snapshot = core.take_snapshot();
            } catch (...) {
              log::error("Failed to take the profile snapshot after a job, ignoring.");
            }
          }
        } finish{*this, *snapshot};
        return fn(device_);
      },
      [this, reply, snapshot](Result<T> r) {
        apply(std::move(*snapshot));
        reply(std::move(r));
      });
  if (!st) reply(tl::unexpected(st.error()));
}

}  // namespace mcimd::daemon
