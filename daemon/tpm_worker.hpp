#pragma once
// The one thread that talks to the TPM. D-Bus handlers submit jobs and return at once; each
// job's result comes back on the sd-event loop thread, so no handler ever blocks on the TPM.
#include <systemd/sd-event.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <optional>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "common/error.hpp"

namespace mcimd::daemon {

class TpmWorker {
 public:
  // queue_limit bounds the jobs waiting (not counting the running one).
  [[nodiscard]] static Result<std::unique_ptr<TpmWorker>> create(sd_event* loop, unsigned queue_limit);
  ~TpmWorker();

  // Runs job on the worker thread, then done(result) on the loop thread. Busy when the queue
  // is full or the worker is stopping (done is not called then).
  // A job that throws is a bug: it costs that one answer (Internal, the exception's text), never
  // the worker thread or the daemon.
  template <class T>
  [[nodiscard]] Status submit(std::function<Result<T>()> job, std::function<void(Result<T>)> done) {
    auto result = std::make_shared<std::optional<Result<T>>>();
    return enqueue(
        [job = std::move(job), result] {
          try {
            result->emplace(job());
          } catch (const std::exception& e) {
            result->emplace(internal_error(e.what()));
          } catch (...) {
            result->emplace(internal_error("an exception of unknown type"));
          }
        },
        [done = std::move(done), result] { done(std::move(**result)); });
  }

  // Finishes the running job and every queued one, then joins the thread. Completions still
  // run on the loop if it keeps running; the caller decides.
  void stop();

  // Steady-clock time since the running job started, or zero when idle (for the watchdog).
  std::chrono::milliseconds running_for() const;
  std::size_t queued() const;

 private:
  TpmWorker() = default;
  // Logs the exception and makes the error a job answers with.
  static tl::unexpected<Error> internal_error(const char* what);
  Status enqueue(std::function<void()> work, std::function<void()> completion);
  void run();
  static int on_completion(sd_event_source* s, int fd, uint32_t revents, void* userdata);

  struct Job {
    std::function<void()> work;
    std::function<void()> completion;
  };
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::deque<std::function<void()>> completions_;
  bool stopping_ = false;
  unsigned queue_limit_ = 64;
  std::atomic<int64_t> job_started_ns_{0};
  int event_fd_ = -1;
  sd_event_source* source_ = nullptr;
  std::thread thread_;
};

}  // namespace mcimd::daemon
