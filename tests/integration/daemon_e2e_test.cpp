// mcimd end to end: a real swtpm, a private dbus-daemon, the daemon binary, driven through
// mcimctl and busctl as a modem stack and an administrator would.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/mcimd_instance.hpp"

using namespace mcimd::test;
using nlohmann::json;

namespace {

const char* kProfile = "/org/mcimd/Tre1/Profile/1";
const char* kUsim = "org.mcimd.Tre1.USimApplication";

// busctl's "ay 16 0x01 0x02 …" argument form of a hex string.
std::vector<std::string> ay(const std::string& hex) {
  std::vector<std::string> out = {std::to_string(hex.size() / 2)};
  for (std::size_t i = 0; i < hex.size(); i += 2) out.push_back(std::to_string(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::vector<std::string> umts_call(const std::string& path, const std::string& rand, const std::string& autn) {
  std::vector<std::string> args = {"call", "org.mcimd.Tre1", path, kUsim, "UmtsAuthenticate", "ayay"};
  for (auto& a : ay(rand)) args.push_back(a);
  for (auto& a : ay(autn)) args.push_back(a);
  return args;
}

class AnInstalledProfile : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mcimd.start()) << mcimd.log();
    auto yaml = mcimd.dir() / "profile.yaml";
    std::ofstream(yaml) << kDemoProfileYaml;
    auto r = mcimd.mcimctl({"install", yaml.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  }

  json authenticate(const Challenge& c, int expect_exit = 0) {
    auto r = mcimd.mcimctl({"authenticate", "1", "--rand", c.rand, "--autn", c.autn, "--json"});
    EXPECT_EQ(r.exit_code, expect_exit) << r.out << r.err << mcimd.log();
    if (r.exit_code != 0) return json{{"error", r.err}};
    return json::parse(r.out);
  }

  McimdInstance mcimd;
};

}  // namespace

TEST_F(AnInstalledProfile, AnswersTheNetworksChallengeWithTheExpectedRes) {
  auto c = make_challenge(mcimd, "000000000021");
  auto answer = authenticate(c);
  EXPECT_EQ(answer.value("res", ""), c.xres);
  EXPECT_EQ(answer.value("ck", ""), c.ck);
  EXPECT_EQ(answer.value("ik", ""), c.ik);
}

TEST_F(AnInstalledProfile, AnswersAReplayedChallengeWithAutsOnly) {
  auto c = make_challenge(mcimd, "000000000021");
  authenticate(c);
  auto r = mcimd.busctl(umts_call(kProfile, c.rand, c.autn));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"AUTS\""), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"RES\""), std::string::npos) << r.out;
}

TEST_F(AnInstalledProfile, KeepsTheSequenceNumberAcrossARestart) {
  auto c = make_challenge(mcimd, "000000000021");
  authenticate(c);
  ASSERT_EQ(mcimd.stop(), 0) << mcimd.log();
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  auto again = authenticate(c);
  EXPECT_FALSE(again.contains("res")) << again.dump();
  EXPECT_TRUE(again.contains("auts")) << again.dump();
  auto next = make_challenge(mcimd, "000000000041");
  EXPECT_EQ(authenticate(next).value("res", ""), next.xres);
}

TEST_F(AnInstalledProfile, RefusesAuthenticationOnceAPcrOfItsPolicyIsExtended) {
  auto c = make_challenge(mcimd, "000000000021");
  EXPECT_EQ(authenticate(c).value("res", ""), c.xres);
  auto ext = mcimd.tpm2({"tpm2_pcrextend", "16:sha256=" + std::string(64, 'a')});
  ASSERT_EQ(ext.exit_code, 0) << ext.err;
  auto next = make_challenge(mcimd, "000000000041");
  auto r = mcimd.busctl(umts_call(kProfile, next.rand, next.autn));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("PlatformStateChanged"), std::string::npos) << r.err;
  auto state = mcimd.busctl({"get-property", "org.mcimd.Tre1", "/org/mcimd/Tre1", "org.mcimd.Tre1.Manager",
                             "PlatformState"});
  EXPECT_NE(state.out.find("changed"), std::string::npos) << state.out;
}

TEST_F(AnInstalledProfile, AnswersEachBadInputWithItsNamedErrorAndKeepsServing) {
  auto c = make_challenge(mcimd, "000000000021");
  struct Case {
    std::vector<std::string> args;
    std::optional<uid_t> uid;
    std::string error;
  };
  std::string rand15 = c.rand.substr(0, 30);
  std::string random_autn = "00112233445566778899aabbccddeeff";
  std::vector<Case> cases = {
      {umts_call(kProfile, rand15, c.autn), {}, "org.mcimd.Tre1.Error.InvalidArgument"},
      {umts_call(kProfile, c.rand, random_autn), {}, "org.mcimd.Tre1.Error.MacFailure"},
      {umts_call("/org/mcimd/Tre1/Profile/99", c.rand, c.autn), {}, "NotFound"},
      {{"call", "org.mcimd.Tre1", kProfile, kUsim, "UmtsAuthenticate", "s", "hello"}, {}, "InvalidArgs"},
      {umts_call(kProfile, c.rand, c.autn), uid_t{65534}, "org.mcimd.Tre1.Error.NotAuthorized"},
  };
  for (auto& k : cases) {
    auto r = mcimd.busctl(k.args, k.uid);
    EXPECT_NE(r.exit_code, 0) << k.error;
    EXPECT_NE((r.err + r.out).find(k.error), std::string::npos) << "expected " << k.error << ", got: " << r.err;
  }
  // Still serving, and the MAC failure changed no SQN state: the challenge is accepted.
  EXPECT_EQ(authenticate(c).value("res", ""), c.xres);
}

TEST_F(AnInstalledProfile, IsRefusedWhenTheStoreIsRolledBack) {
  ASSERT_EQ(mcimd.stop(), 0);
  auto backup = mcimd.dir() / "store-backup";
  std::filesystem::copy(mcimd.store(), backup, std::filesystem::copy_options::recursive);
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  auto c = make_challenge(mcimd, "000000000021");
  authenticate(c);
  ASSERT_EQ(mcimd.stop(), 0);
  std::filesystem::remove_all(mcimd.store());
  std::filesystem::copy(backup, mcimd.store(), std::filesystem::copy_options::recursive);
  EXPECT_FALSE(mcimd.start());
  EXPECT_NE(mcimd.wait_exit(std::chrono::seconds(10)), 0);
  EXPECT_NE(mcimd.log().find("RollbackDetected"), std::string::npos) << mcimd.log();
}

TEST_F(AnInstalledProfile, NeverWritesASecretToTheLogOrOutsideTheStore) {
  auto c = make_challenge(mcimd, "000000000021");
  authenticate(c);
  ASSERT_EQ(mcimd.stop(), 0);
  auto log = mcimd.log();
  for (std::string secret : {std::string(kSet1K), std::string(kSet1Opc), c.xres, c.ck, c.ik}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "secret in the log";
  }
  // Nor in any store file (K and OPc exist only as TPM-wrapped blobs).
  for (auto& e : std::filesystem::recursive_directory_iterator(mcimd.store())) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(content.find(kSet1K), std::string::npos) << e.path();
    EXPECT_EQ(content.find(kSet1Opc), std::string::npos) << e.path();
    auto perms = e.status().permissions();
    EXPECT_EQ(perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
              std::filesystem::perms::none)
        << e.path();
  }
}

TEST(TheDaemon, ExitsNonZeroNamingTheKeyOfABadConfig) {
  TempDir dir;
  auto cfg = dir.path() / "bad.yaml";
  std::ofstream(cfg) << "store: /tmp/x\ntpm:\n  tcit: swtpm:\n";
  auto r = run({binary("daemon/mcimd").string(), "--config", cfg.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("tpm.tcit"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(":3"), std::string::npos) << r.err;
}

TEST(TheDaemon, StopsCleanlyOnSigterm) {
  McimdInstance mcimd;
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  EXPECT_EQ(mcimd.stop(), 0) << mcimd.log();
}
