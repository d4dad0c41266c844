#include "agent/retry.hpp"

#include <algorithm>
#include <optional>
#include <random>
#include <thread>

namespace mcimd::agent {

Millis backoff_delay(const RetryPolicy& policy, unsigned failed_attempts, double unit) {
  const int64_t cap = std::max<int64_t>(0, policy.max_backoff.count());
  int64_t base = std::max<int64_t>(0, policy.initial_backoff.count());
  // Doubling stops at the cap, so no shift overflows however many attempts are configured.
  for (unsigned i = 1; i < failed_attempts && base < cap; ++i) base *= 2;
  base = std::min(base, cap);
  unit = std::clamp(unit, 0.0, 1.0);
  const int64_t half = base / 2;
  return Millis(half + static_cast<int64_t>(static_cast<double>(base - half) * unit));
}

namespace {

class SystemRetryClock final : public RetryClock {
 public:
  std::chrono::steady_clock::time_point now() override { return std::chrono::steady_clock::now(); }
  void sleep(Millis duration) override { std::this_thread::sleep_for(duration); }
  double unit_random() override { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

 private:
  std::mt19937_64 rng_{std::random_device{}()};
};

std::string seconds(std::chrono::steady_clock::duration d) {
  auto ms = std::chrono::duration_cast<Millis>(d).count();
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(ms) / 1000.0);
  return text;
}

}  // namespace

RetryClock& system_retry_clock() {
  static SystemRetryClock clock;
  return clock;
}

namespace detail {

std::optional<Failure> retry_loop(const RetryPolicy& policy, RetryClock& clock,
                                  const std::function<std::optional<Failure>()>& attempt, const RetryNotice& notice) {
  const auto first = clock.now();
  const unsigned attempts = std::max(1u, policy.attempts);
  for (unsigned n = 1;; ++n) {
    std::optional<Failure> failure = attempt();
    if (!failure || !failure->retryable()) return failure;
    const bool last = n >= attempts;
    Millis wait = last ? Millis(0) : backoff_delay(policy, n, clock.unit_random());
    if (last || clock.now() + wait - first > policy.give_up_after) {
      if (n > 1)
        failure->error.message +=
            " (gave up after " + std::to_string(n) + " attempts in " + seconds(clock.now() - first) + ")";
      return failure;
    }
    if (notice) notice(*failure, n, wait);
    clock.sleep(wait);
  }
}

}  // namespace detail

}  // namespace mcimd::agent
