#include <gtest/gtest.h>
#include <systemd/sd-event.h>

#include <atomic>
#include <future>
#include <optional>
#include <stdexcept>
#include <thread>

#include "daemon/tpm_worker.hpp"

using namespace mcimd;
using mcimd::daemon::TpmWorker;

namespace {

struct Loop {
  sd_event* e = nullptr;
  Loop() {
    if (sd_event_new(&e) < 0) throw std::runtime_error("sd_event_new failed");
  }
  ~Loop() { sd_event_unref(e); }
  // Runs the loop until pred holds (or 5 s pass).
  bool run_until(const std::function<bool()>& pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!pred() && std::chrono::steady_clock::now() < deadline) sd_event_run(e, 10'000);
    return pred();
  }
};

}  // namespace

TEST(TheTpmWorker, RunsJobsOffTheLoopThreadAndCompletesThemOnIt) {
  Loop loop;
  auto worker = TpmWorker::create(loop.e, 4).value();
  auto loop_thread = std::this_thread::get_id();
  std::vector<int> order;
  std::thread::id job_thread;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(worker->submit<int>(
        [&, i]() -> Result<int> {
          job_thread = std::this_thread::get_id();
          return i;
        },
        [&](Result<int> r) {
          EXPECT_EQ(std::this_thread::get_id(), loop_thread);
          order.push_back(r.value());
        }));
  }
  ASSERT_TRUE(loop.run_until([&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_NE(job_thread, loop_thread);
}

TEST(TheTpmWorker, KeepsTheLoopServingWhileAJobBlocks) {
  Loop loop;
  auto worker = TpmWorker::create(loop.e, 4).value();
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> started{false};
  bool done = false;
  ASSERT_TRUE(worker->submit<int>(
      [released, &started]() -> Result<int> {
        started = true;
        released.wait();
        return 1;
      },
      [&](Result<int>) { done = true; }));
  while (!started) std::this_thread::yield();
  // A timer on the loop fires 50 ms later, while the job is still stuck in the "TPM".
  int ticks = 0;
  sd_event_source* timer = nullptr;
  uint64_t now = 0;
  ASSERT_GE(sd_event_now(loop.e, CLOCK_MONOTONIC, &now), 0);
  ASSERT_GE(sd_event_add_time(
                loop.e, &timer, CLOCK_MONOTONIC, now + 50'000, 0,
                [](sd_event_source*, uint64_t, void* p) {
                  ++*static_cast<int*>(p);
                  return 0;
                },
                &ticks),
            0);
  ASSERT_TRUE(loop.run_until([&] { return ticks == 1; }));
  EXPECT_FALSE(done);
  // The watchdog reads how long the job has been stuck: at least the timer's 50 ms by now.
  EXPECT_GE(worker->running_for(), std::chrono::milliseconds(50));
  release.set_value();
  ASSERT_TRUE(loop.run_until([&] { return done; }));
  EXPECT_EQ(worker->running_for().count(), 0);
  sd_event_source_unref(timer);
}

TEST(TheTpmWorker, AnswersBusyWhenItsQueueIsFull) {
  Loop loop;
  auto worker = TpmWorker::create(loop.e, 1).value();
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> started{false};
  auto blocker = [&, released]() -> Result<int> {
    started = true;
    released.wait();
    return 0;
  };
  int completed = 0;
  ASSERT_TRUE(worker->submit<int>(blocker, [&](Result<int>) { ++completed; }));
  while (!started) std::this_thread::yield();
  ASSERT_TRUE(worker->submit<int>([]() -> Result<int> { return 0; }, [&](Result<int>) { ++completed; }));
  auto refused = worker->submit<int>([]() -> Result<int> { return 0; }, [&](Result<int>) { ++completed; });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::Busy);
  release.set_value();
  ASSERT_TRUE(loop.run_until([&] { return completed == 2; }));
}

TEST(TheTpmWorker, AnswersAJobThatThrowsWithAnInternalErrorAndKeepsServing) {
  Loop loop;
  auto worker = TpmWorker::create(loop.e, 4).value();
  std::optional<Result<int>> thrown, unknown, next;
  ASSERT_TRUE(worker->submit<int>([]() -> Result<int> { throw std::runtime_error("a bug"); },
                                  [&](Result<int> r) { thrown = std::move(r); }));
  ASSERT_TRUE(worker->submit<int>([]() -> Result<int> { throw 42; }, [&](Result<int> r) { unknown = std::move(r); }));
  ASSERT_TRUE(worker->submit<int>([]() -> Result<int> { return 7; }, [&](Result<int> r) { next = std::move(r); }));
  ASSERT_TRUE(loop.run_until([&] { return thrown && unknown && next; }));
  ASSERT_FALSE(*thrown);
  EXPECT_EQ(thrown->error().code, Code::Internal);
  EXPECT_NE(thrown->error().message.find("a bug"), std::string::npos) << thrown->error().message;
  ASSERT_FALSE(*unknown);
  EXPECT_EQ(unknown->error().code, Code::Internal);
  ASSERT_TRUE(*next);
  EXPECT_EQ(**next, 7);
}
