// The agent's state file: what it keeps at each step, that it reads back what it wrote, that it
// refuses a file someone else could have written, and what a run does first with each state.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "agent/state.hpp"
#include "common/bytes.hpp"
#include "common/file.hpp"
#include "tests/support/temp_dir.hpp"

using namespace mcimd;
using namespace mcimd::agent;
using mcimd::test::TempDir;

namespace {

constexpr const char* kOperator = "https://operator.example:8443";
const std::string kDevice = "000b" + std::string(64, 'a');

RunState run_at(Step step) {
  RunState r;
  r.step = step;
  r.operator_url = kOperator;
  r.device = kDevice;
  r.subscription = "plan-7";
  r.session = "s-1";
  r.session_expires = "2030-01-01T00:10:00Z";
  if (step == Step::Session) r.session_nonce = base64url_encode(Bytes(32, 0x5a));
  if (step != Step::Session) r.package_id = "pkg-1";
  if (step == Step::Package) r.package = "aGVhZGVy.cGF5bG9hZA.c2ln";
  if (step == Step::Installed || step == Step::Done) r.profile = "/org/mcimd/Tre1/Profile/1";
  if (step == Step::Installed) r.receipt = R"({"format":"mcimd-install-receipt-1"})";
  return r;
}

AgentState state_at(Step step) {
  AgentState s;
  s.enrolments.push_back(Enrolment{kOperator, kDevice});
  s.run = run_at(step);
  return s;
}

protocol::Timestamp at(const char* text) { return *protocol::parse_timestamp(text); }

ResumeContext context(const char* now = "2030-01-01T00:00:00Z", std::string op = kOperator, bool again = false) {
  return ResumeContext{std::move(op), at(now), again};
}

}  // namespace

TEST(TheAgentState, RoundTripsAtEveryStep) {
  for (Step step : {Step::Session, Step::Package, Step::Installed, Step::Done}) {
    AgentState s = state_at(step);
    auto back = state_from_json(to_json(s));
    ASSERT_TRUE(back) << to_string(step) << ": " << back.error().describe();
    EXPECT_EQ(*back, s) << to_string(step);
  }
  AgentState none;
  auto back = state_from_json(to_json(none));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, none);
}

TEST(TheAgentState, RoundTripsThroughItsFileWithMode0600) {
  TempDir dir;
  const auto state_dir = dir.path() / "agent";
  ASSERT_TRUE(prepare_state_dir(state_dir));
  auto empty = load_state(state_dir);
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, AgentState{});
  for (Step step : {Step::Session, Step::Package, Step::Installed, Step::Done}) {
    ASSERT_TRUE(save_state(state_dir, state_at(step)));
    auto loaded = load_state(state_dir);
    ASSERT_TRUE(loaded) << loaded.error().describe();
    EXPECT_EQ(*loaded, state_at(step));
  }
  struct stat st {};
  ASSERT_EQ(::stat((state_dir / kStateFileName).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(state_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST(TheAgentState, RefusesAFileOthersCouldHaveWritten) {
  TempDir dir;
  ASSERT_TRUE(prepare_state_dir(dir.path()));
  ASSERT_TRUE(save_state(dir.path(), state_at(Step::Package)));
  ASSERT_EQ(::chmod((dir.path() / kStateFileName).c_str(), 0644), 0);
  auto loaded = load_state(dir.path());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Code::StoreTampered);
}

TEST(TheAgentState, RefusesASymbolicLink) {
  TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.path() / "elsewhere.json", std::string_view(to_json(state_at(Step::Done)))));
  std::filesystem::create_symlink(dir.path() / "elsewhere.json", dir.path() / kStateFileName);
  auto loaded = load_state(dir.path());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Code::StoreTampered);
}

TEST(TheAgentState, NamesTheFieldOfACorruptDocument) {
  struct Case {
    std::string text;
    const char* field;
  };
  std::string package = to_json(state_at(Step::Package));
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  const Case cases[] = {
      {"not json", "(document)"},
      {R"({"format":"mcimd-agent-state-2","enrolments":[],"run":null})", "format"},
      {R"({"format":"mcimd-agent-state-1","enrolments":[],"run":null,"extra":1})", "(document).extra"},
      {R"({"format":"mcimd-agent-state-1","run":null})", "enrolments"},
      {replace(package, "\"step\": \"package\"", "\"step\": \"fetched\""), "run.step"},
      {replace(package, "\"package\": \"aGVhZGVy.cGF5bG9hZA.c2ln\"", "\"package\": null"), "run.package"},
      {replace(package, "\"device\": \"000b", "\"device\": \"000B"), ".device"},
      {replace(package, "https://operator.example:8443", "http://operator.example"), ".operator"},
      {replace(package, "2030-01-01T00:10:00Z", "tomorrow"), "run.session_expires"},
      {replace(to_json(state_at(Step::Session)), base64url_encode(Bytes(32, 0x5a)), "AAAA"), "run.session_nonce"},
      {replace(to_json(state_at(Step::Installed)), "\"receipt\"", "\"receipts\""), "run.receipts"},
  };
  for (const auto& c : cases) {
    auto s = state_from_json(c.text);
    ASSERT_FALSE(s) << c.text;
    EXPECT_EQ(s.error().code, Code::StoreCorrupt);
    EXPECT_NE(s.error().message.find(c.field), std::string::npos) << c.field << " → " << s.error().message;
  }
}

TEST(AResumeDecision, StartsFreshWithoutARun) {
  EXPECT_EQ(decide_resume(AgentState{}, context()), Resume::Fresh);
}

TEST(AResumeDecision, ReusesASessionUntilItExpires) {
  EXPECT_EQ(decide_resume(state_at(Step::Session), context("2030-01-01T00:09:59Z")), Resume::ReuseSession);
  EXPECT_EQ(decide_resume(state_at(Step::Session), context("2030-01-01T00:10:00Z")), Resume::NewSession);
}

TEST(AResumeDecision, InstallsAReceivedPackageAgain) {
  EXPECT_EQ(decide_resume(state_at(Step::Package), context()), Resume::InstallPackage);
  // Even past the session's expiry: the package carries its own expiry, which mcimd checks.
  EXPECT_EQ(decide_resume(state_at(Step::Package), context("2031-01-01T00:00:00Z")), Resume::InstallPackage);
}

TEST(AResumeDecision, SendsAnUnacceptedReceiptAgain) {
  EXPECT_EQ(decide_resume(state_at(Step::Installed), context()), Resume::SendReceipt);
}

TEST(AResumeDecision, DoesNothingAfterAFinishedRunWithTheSameOperator) {
  EXPECT_EQ(decide_resume(state_at(Step::Done), context()), Resume::AlreadyDone);
  EXPECT_EQ(decide_resume(state_at(Step::Done), context("2030-01-01T00:00:00Z", "https://other.example")),
            Resume::Fresh);
}

TEST(AResumeDecision, LeavesAnUnfinishedRunWithAnotherOperatorAlone) {
  for (Step step : {Step::Session, Step::Package, Step::Installed})
    EXPECT_EQ(decide_resume(state_at(step), context("2030-01-01T00:00:00Z", "https://other.example")),
              Resume::OtherOperator)
        << to_string(step);
}

TEST(AResumeDecision, StartsFreshWhenAskedToStartAgain) {
  for (Step step : {Step::Session, Step::Package, Step::Installed, Step::Done})
    EXPECT_EQ(decide_resume(state_at(step), context("2030-01-01T00:00:00Z", kOperator, /*again=*/true)),
              Resume::Fresh)
        << to_string(step);
}
