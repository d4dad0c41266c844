#pragma once
// Retrying transient failures with exponential back-off and jitter, bounded in attempts and in
// time. Gateways of one fleet often boot together (a power cut, a firmware rollout): jitter keeps
// them from reaching the operator in lockstep, the bounds keep a boot unit from running forever.
// A refusal is never retried: the same request gets the same answer.
#include <chrono>
#include <functional>
#include <string>

#include "agent/failure.hpp"

namespace mcimd::agent {

using Millis = std::chrono::milliseconds;

struct RetryPolicy {
  unsigned attempts = 6;          // tries of one exchange in all, the first included (≥ 1)
  Millis initial_backoff{2'000};  // the wait after the first failure, before jitter
  Millis max_backoff{60'000};     // no single wait grows beyond this
  Millis give_up_after{600'000};  // no new attempt starts later than this after the first one
};

// The wait after `failed_attempts` (≥ 1) failures: base = min(max_backoff, initial_backoff ·
// 2^(failed_attempts − 1)), then drawn uniformly from [base/2, base] by `unit` ∈ [0, 1) — half
// the spread of "full jitter" keeps a lower bound a slow server can count on.
Millis backoff_delay(const RetryPolicy& policy, unsigned failed_attempts, double unit);

// Time and randomness, replaceable in tests.
class RetryClock {
 public:
  virtual ~RetryClock() = default;
  virtual std::chrono::steady_clock::time_point now() = 0;
  virtual void sleep(Millis duration) = 0;
  virtual double unit_random() = 0;  // uniform in [0, 1)
};
// The steady clock, nanosleep, and a random_device-seeded generator.
RetryClock& system_retry_clock();

// Told before each wait: the failure, the attempt that failed (1-based), and the wait.
using RetryNotice = std::function<void(const Failure& failure, unsigned attempt, Millis wait)>;

// Calls `attempt` until it succeeds, fails in a way that is not retryable, runs out of attempts,
// or the next attempt would start later than give_up_after after the first. A failure after
// retries says how many attempts were made and over what time.
template <class T>
Outcome<T> with_retries(const RetryPolicy& policy, RetryClock& clock, const std::function<Outcome<T>()>& attempt,
                        const RetryNotice& notice = {});

namespace detail {
// The retry loop without the result type: `attempt` returns nullopt on success.
std::optional<Failure> retry_loop(const RetryPolicy& policy, RetryClock& clock,
                                  const std::function<std::optional<Failure>()>& attempt, const RetryNotice& notice);
}  // namespace detail

template <class T>
Outcome<T> with_retries(const RetryPolicy& policy, RetryClock& clock, const std::function<Outcome<T>()>& attempt,
                        const RetryNotice& notice) {
  std::optional<T> value;
  auto failure = detail::retry_loop(
      policy, clock,
      [&]() -> std::optional<Failure> {
        auto r = attempt();
        if (!r) return std::move(r).error();
        value.emplace(std::move(*r));
        return std::nullopt;
      },
      notice);
  if (failure) return tl::unexpected(std::move(*failure));
  return std::move(*value);
}

}  // namespace mcimd::agent
