#pragma once
// A RetryClock for the agent's tests: time passes only when the code under test sleeps, and its
// "random" jitter is a fixed value, so retried exchanges take no wall-clock time and their waits
// can be asserted exactly.
#include <vector>

#include "agent/retry.hpp"

namespace mcimd::test {

class ManualRetryClock final : public agent::RetryClock {
 public:
  explicit ManualRetryClock(double unit = 1.0) : unit_(unit) {}
  std::chrono::steady_clock::time_point now() override { return now_; }
  void sleep(agent::Millis d) override {
    sleeps.push_back(d);
    now_ += d;
  }
  double unit_random() override { return unit_; }

  std::vector<agent::Millis> sleeps;  // every wait, in order

 private:
  std::chrono::steady_clock::time_point now_{};
  double unit_;
};

}  // namespace mcimd::test
