// Retrying the operator and mcimd: which failures are retried, how the waits grow, where they stop.
#include <gtest/gtest.h>

#include <vector>

#include "agent/http.hpp"
#include "agent/retry.hpp"
#include "tests/support/manual_retry_clock.hpp"

using namespace mcimd;
using namespace mcimd::agent;
using mcimd::test::ManualRetryClock;

namespace {

Failure failure_of(FailureKind kind, Code code = Code::IoError) {
  return Failure{Party::Operator, kind, Error{code, "test"}};
}

// The classification of an answer with this HTTP status and an mcimd-error-1 body.
Outcome<HttpAnswer> answer_with(long status, std::string code = "Replayed") {
  Transfer t;
  t.status = status;
  t.content_type = "application/json";
  t.body = R"({"format":"mcimd-error-1","code":")" + code + R"(","message":"no"})";
  return classify_transfer("https://o.example/v1/packages", t);
}

}  // namespace

TEST(ABackoff, DoublesFromTheInitialWaitUpToTheCap) {
  RetryPolicy p;
  p.initial_backoff = Millis(1'000);
  p.max_backoff = Millis(10'000);
  // unit 1.0 is the top of the jitter range: the base itself.
  EXPECT_EQ(backoff_delay(p, 1, 1.0), Millis(1'000));
  EXPECT_EQ(backoff_delay(p, 2, 1.0), Millis(2'000));
  EXPECT_EQ(backoff_delay(p, 3, 1.0), Millis(4'000));
  EXPECT_EQ(backoff_delay(p, 4, 1.0), Millis(8'000));
  EXPECT_EQ(backoff_delay(p, 5, 1.0), Millis(10'000));
  EXPECT_EQ(backoff_delay(p, 1000, 1.0), Millis(10'000));  // no overflow however many attempts
}

TEST(ABackoff, IsJitteredWithinTheUpperHalfOfItsBase) {
  RetryPolicy p;
  p.initial_backoff = Millis(4'000);
  p.max_backoff = Millis(60'000);
  EXPECT_EQ(backoff_delay(p, 1, 0.0), Millis(2'000));
  EXPECT_EQ(backoff_delay(p, 1, 0.5), Millis(3'000));
  EXPECT_EQ(backoff_delay(p, 2, 0.0), Millis(4'000));
  EXPECT_EQ(backoff_delay(p, 2, 0.25), Millis(5'000));
}

TEST(TheRetryLoop, RetriesTransientFailuresUntilOneSucceeds) {
  RetryPolicy p;
  p.attempts = 5;
  p.initial_backoff = Millis(100);
  p.max_backoff = Millis(1'000);
  ManualRetryClock clock;
  int calls = 0;
  std::vector<unsigned> noticed;
  auto r = with_retries<int>(
      p, clock,
      [&]() -> Outcome<int> {
        if (++calls < 3) return tl::unexpected(failure_of(FailureKind::Transient));
        return 42;
      },
      [&](const Failure&, unsigned attempt, Millis) { noticed.push_back(attempt); });
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 42);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(clock.sleeps, (std::vector<Millis>{Millis(100), Millis(200)}));
  EXPECT_EQ(noticed, (std::vector<unsigned>{1, 2}));
}

TEST(TheRetryLoop, NeverRetriesARefusalOrAnUntrustedServer) {
  for (FailureKind kind : {FailureKind::Refused, FailureKind::Untrusted, FailureKind::Malformed, FailureKind::Local}) {
    ManualRetryClock clock;
    int calls = 0;
    auto r = with_retries<int>(RetryPolicy{}, clock, [&]() -> Outcome<int> {
      ++calls;
      return tl::unexpected(failure_of(kind, Code::Replayed));
    });
    ASSERT_FALSE(r);
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(clock.sleeps.empty());
    EXPECT_EQ(r.error().error.code, Code::Replayed);
  }
}

TEST(TheRetryLoop, StopsAfterItsAttemptsAndSaysSo) {
  RetryPolicy p;
  p.attempts = 3;
  p.initial_backoff = Millis(10);
  ManualRetryClock clock;
  int calls = 0;
  auto r = with_retries<int>(p, clock, [&]() -> Outcome<int> {
    ++calls;
    return tl::unexpected(failure_of(FailureKind::Transient));
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(clock.sleeps.size(), 2u);
  EXPECT_NE(r.error().error.message.find("gave up after 3 attempts"), std::string::npos);
}

TEST(TheRetryLoop, StartsNoAttemptAfterItsTimeBudget) {
  RetryPolicy p;
  p.attempts = 100;
  p.initial_backoff = Millis(1'000);
  p.max_backoff = Millis(1'000);
  p.give_up_after = Millis(3'500);
  ManualRetryClock clock;
  int calls = 0;
  auto r = with_retries<int>(p, clock, [&]() -> Outcome<int> {
    ++calls;
    return tl::unexpected(failure_of(FailureKind::Transient));
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(calls, 4);  // at 0, 1, 2 and 3 s; the next would start at 4 s
}

TEST(AnOperatorAnswer, IsRetriedOnlyFor5xxAnd429) {
  for (long status : {500L, 502L, 503L, 504L, 429L}) {
    auto r = answer_with(status, "Busy");
    ASSERT_FALSE(r) << status;
    EXPECT_TRUE(r.error().retryable()) << status;
    EXPECT_EQ(r.error().error.code, Code::Busy) << status;
  }
  for (long status : {400L, 401L, 403L, 404L, 408L, 409L, 410L, 422L}) {
    auto r = answer_with(status);
    ASSERT_FALSE(r) << status;
    EXPECT_FALSE(r.error().retryable()) << status;
    EXPECT_EQ(r.error().kind, FailureKind::Refused) << status;
    EXPECT_EQ(r.error().error.code, Code::Replayed) << status;  // the operator's code, surfaced
  }
}

TEST(ATransfer, IsRetriedWhenTheNetworkFailedAndNeverWhenTheCertificateDid) {
  for (CURLcode c : {CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_COULDNT_RESOLVE_HOST, CURLE_RECV_ERROR,
                     CURLE_SEND_ERROR, CURLE_GOT_NOTHING}) {
    Transfer t;
    t.result = c;
    t.reason = "x";
    auto r = classify_transfer("https://o.example/v1/sessions", t);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().retryable()) << c;
  }
  Transfer t;
  t.result = CURLE_PEER_FAILED_VERIFICATION;
  t.reason = "SSL certificate problem: unable to get local issuer certificate";
  auto r = classify_transfer("https://o.example/v1/sessions", t);
  ASSERT_FALSE(r);
  EXPECT_FALSE(r.error().retryable());
  EXPECT_EQ(r.error().kind, FailureKind::Untrusted);
  EXPECT_EQ(r.error().error.code, Code::UntrustedServer);
}
