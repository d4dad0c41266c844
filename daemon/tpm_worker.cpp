#include "daemon/tpm_worker.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "common/log.hpp"

namespace mcimd::daemon {

namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Result<std::unique_ptr<TpmWorker>> TpmWorker::create(sd_event* loop, unsigned queue_limit) {
  std::unique_ptr<TpmWorker> w(new TpmWorker());
  w->queue_limit_ = queue_limit;
  w->event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->event_fd_ < 0) return fail_errno("Failed to create eventfd", errno);
  int r = sd_event_add_io(loop, &w->source_, w->event_fd_, EPOLLIN, &TpmWorker::on_completion, w.get());
  if (r < 0) return fail_errno("Failed to watch the worker's eventfd", -r);
  w->thread_ = std::thread([p = w.get()] { p->run(); });
  return w;
}

tl::unexpected<Error> TpmWorker::internal_error(const char* what) {
  log::error(std::string("Internal error in a TPM job: ") + what);
  return fail(Code::Internal, std::string("Internal error: ") + what);
}

TpmWorker::~TpmWorker() {
  stop();
  if (source_) sd_event_source_disable_unref(source_);
  if (event_fd_ >= 0) close(event_fd_);
}

Status TpmWorker::enqueue(std::function<void()> work, std::function<void()> completion) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return fail(Code::Busy, "The service is shutting down");
    if (queue_.size() >= queue_limit_)
      return fail(Code::Busy, "Too many TPM operations waiting (" + std::to_string(queue_.size()) + "); try again");
    queue_.push_back(Job{std::move(work), std::move(completion)});
  }
  wake_.notify_one();
  return {};
}

void TpmWorker::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job_started_ns_ = now_ns();
    job.work();
    job_started_ns_ = 0;
    {
      std::lock_guard lock(mutex_);
      completions_.push_back(std::move(job.completion));
    }
    uint64_t one = 1;
    if (write(event_fd_, &one, sizeof one) < 0 && errno != EAGAIN)
      log::debug("Failed to signal a TPM job completion, ignoring.");
  }
}

int TpmWorker::on_completion(sd_event_source*, int fd, uint32_t, void* userdata) {
  auto* w = static_cast<TpmWorker*>(userdata);
  uint64_t count;
  // Draining the eventfd only re-arms it: the completions queue is read either way, so a
  // failed read (EAGAIN after a spurious wake-up) loses nothing.
  if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN) log::debug("Failed to drain the completion eventfd");
  std::deque<std::function<void()>> ready;
  {
    std::lock_guard lock(w->mutex_);
    ready.swap(w->completions_);
  }
  for (auto& c : ready) c();
  return 0;
}

void TpmWorker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::chrono::milliseconds TpmWorker::running_for() const {
  int64_t started = job_started_ns_;
  if (started == 0) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(now_ns() - started));
}

std::size_t TpmWorker::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

}  // namespace mcimd::daemon
