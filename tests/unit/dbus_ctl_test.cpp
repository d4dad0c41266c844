// mcimctl's argument handling and exit codes, without a running mcimd.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"
#include "tools/cli.hpp"

namespace mcimd::ctl {
namespace {

struct Outcome {
  int code;
  std::string out, err;
};

Outcome run_ctl(std::vector<std::string> args) {
  args.insert(args.begin(), "mcimctl");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::ostringstream out, err;
  int code = run(static_cast<int>(argv.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

// A bus address nobody listens on: commands that get past argument checks fail to connect.
std::string dead_bus(const test::TempDir& dir) { return "unix:path=" + (dir.path() / "no-bus").string(); }

const std::string kHex16 = "00112233445566778899aabbccddeeff";

TEST(TheExitCode, DistinguishesTheErrorsScriptsCareAbout) {
  EXPECT_EQ(exit_code_for({"org.mcimd.Tre1.Error.MacFailure", ""}), kExitMacFailure);
  EXPECT_EQ(exit_code_for({"org.mcimd.Tre1.Error.PlatformStateChanged", ""}), kExitPlatformStateChanged);
  EXPECT_EQ(exit_code_for({"org.mcimd.Tre1.Error.NotAuthorized", ""}), kExitNotAuthorized);
  EXPECT_EQ(exit_code_for({"org.freedesktop.DBus.Error.AccessDenied", ""}), kExitNotAuthorized);
  EXPECT_EQ(exit_code_for({"org.mcimd.Tre1.Error.NotFound", ""}), kExitNotFound);
  EXPECT_EQ(exit_code_for({"org.freedesktop.DBus.Error.ServiceUnknown", ""}), kExitUnreachable);
  EXPECT_EQ(exit_code_for({"org.freedesktop.DBus.Error.NoServer", ""}), kExitUnreachable);
  EXPECT_EQ(exit_code_for({"System.Error.ENOTCONN", ""}), kExitUnreachable);
  EXPECT_EQ(exit_code_for({"org.mcimd.Tre1.Error.TpmFailure", ""}), kExitFailure);
  EXPECT_EQ(exit_code_for({"org.freedesktop.DBus.Error.InvalidArgs", ""}), kExitFailure);
  EXPECT_EQ(exit_code_for({"org.mcimd.Tre1.Error.InvalidArgument", ""}), kExitFailure);
}

TEST(AProfileArgument, AcceptsAnIndexOrAProfilePath) {
  EXPECT_EQ(profile_argument("3").value(), "/org/mcimd/Tre1/Profile/3");
  EXPECT_EQ(profile_argument("0").value(), "/org/mcimd/Tre1/Profile/0");
  EXPECT_EQ(profile_argument("/org/mcimd/Tre1/Profile/12").value(), "/org/mcimd/Tre1/Profile/12");
  for (const char* bad : {"", "-1", "x", "3x", "/org/mcimd/Tre1", "/org/mcimd/Tre1/Profile/x", "4294967296"}) {
    auto r = profile_argument(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Code::InvalidArgument);
  }
}

TEST(Mcimctl, ListsItsExitCodesInHelp) {
  auto r = run_ctl({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("Exit status"), std::string::npos);
  EXPECT_NE(r.out.find("MacFailure"), std::string::npos);
  EXPECT_NE(r.out.find("authenticate"), std::string::npos);
}

TEST(Mcimctl, RejectsAMissingOrUnknownCommandWithUsageStatus) {
  EXPECT_EQ(run_ctl({}).code, kExitUsage);
  EXPECT_EQ(run_ctl({"frobnicate"}).code, kExitUsage);
  EXPECT_EQ(run_ctl({"show"}).code, kExitUsage);  // profile missing
}

TEST(Mcimctl, RejectsBadHexBeforeTouchingTheBus) {
  test::TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"authenticate", "1", "--rand", "xyz0", "--autn", kHex16}, "--rand: not a hex digit"},
      {{"authenticate", "1", "--rand", kHex16 + "0", "--autn", kHex16}, "--rand: hex string has an odd number"},
      {{"authenticate", "1", "--rand", kHex16.substr(2), "--autn", kHex16}, "--rand: expected 16 bytes, got 15"},
      {{"authenticate", "1", "--rand", kHex16, "--autn", kHex16 + "00"}, "--autn: expected 16 bytes, got 17"},
      {{"gsm-authenticate", "1", "--rand", kHex16, "--rand", "zz"}, "--rand 2: "},
      {{"gsm-authenticate", "1", "--rand", kHex16, "--rand", kHex16, "--rand", kHex16, "--rand", kHex16},
       "one to three --rand"},
      {{"authenticate", "nope", "--rand", kHex16, "--autn", kHex16}, "neither a profile index"},
  };
  for (const auto& c : cases) {
    auto args = c.args;
    args.insert(args.begin(), {"--bus-address", dead_bus(dir)});
    auto r = run_ctl(args);
    EXPECT_EQ(r.code, kExitUsage) << c.message;
    EXPECT_NE(r.err.find("mcimctl: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
}

TEST(Mcimctl, RejectsBadAttestationInputBeforeTouchingTheBus) {
  test::TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    auto path = dir.path() / name;
    std::ofstream(path) << text;
    return path.string();
  };
  const std::string not_json = write("not-json", "{\"format\": ");
  const std::string wrong_format = write("wrong-format", R"({"format":"mcimd-evidence-1"})");
  const std::string unsigned_policy = write("policy.json", R"({"pcrs": {"7": "00"}})");
  const std::string two_parts = write("two-parts.jws", "eyJhbGciOiJFUzI1NiJ9.e30\n");
  const std::string empty = write("empty.jws", "\n");
  const std::string huge = write("huge.jws", "a." + std::string(256 * 1024, 'b') + ".c");
  const std::string missing = (dir.path() / "missing").string();
  const std::string jws = write("policy.jws", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln\n");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"attest", "evidence", "--nonce", "xyz0"}, "--nonce: not a hex digit"},
      {{"attest", "evidence", "--nonce", ""}, "--nonce: expected 1 to 64 bytes, got 0"},
      {{"attest", "evidence", "--nonce", std::string(130, 'a')}, "--nonce: expected 1 to 64 bytes, got 65"},
      {{"attest", "evidence", "--nonce", "00", "--out", (dir.path() / "no" / "dir" / "e.json").string()},
       "no directory"},
      {{"attest", "validate", "--policy", jws, "--nonce", "0"}, "--nonce: hex string has an odd number"},
      {{"attest", "validate", "--policy", missing, "--nonce", "00"}, "Cannot open " + missing},
      {{"attest", "validate", "--policy", unsigned_policy, "--nonce", "00"}, "is not a JWS compact serialisation"},
      {{"attest", "validate", "--policy", two_parts, "--nonce", "00"}, "is not a JWS compact serialisation"},
      {{"attest", "validate", "--policy", empty, "--nonce", "00"}, "is empty"},
      {{"attest", "validate", "--policy", huge, "--nonce", "00"}, "a signed policy may have at most 262144"},
      {{"attest", "activate", "--challenge", missing}, "Cannot open " + missing},
      {{"attest", "activate", "--challenge", not_json}, not_json + ": "},
      {{"attest", "activate", "--challenge", wrong_format}, wrong_format + ": "},
      {{"attest", "endorsement", "--ek", "dsa"}, "--ek: dsa not in {ecc,rsa}"},
      {{"attest", "activate", "--challenge", jws, "--ek", "ECC"}, "--ek"},
      {{"attest", "endorsement", "--out", dir.path().string()}, "it is a directory"},
  };
  for (const auto& c : cases) {
    auto args = c.args;
    args.insert(args.begin(), {"--bus-address", dead_bus(dir)});
    auto r = run_ctl(args);
    EXPECT_EQ(r.code, kExitUsage) << c.message << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  // Well-formed input gets as far as the bus.
  auto reached = run_ctl({"--bus-address", dead_bus(dir), "attest", "validate", "--policy", jws, "--nonce", "00"});
  EXPECT_EQ(reached.code, kExitUnreachable) << reached.err;
  EXPECT_EQ(run_ctl({"attest"}).code, kExitUsage);  // no attest command
}

TEST(Mcimctl, ReportsAnUnreadableFileAsUsageError) {
  test::TempDir dir;
  auto r = run_ctl({"--bus-address", dead_bus(dir), "install", (dir.path() / "missing.yaml").string()});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("Cannot open"), std::string::npos) << r.err;
}

TEST(Mcimctl, ReportsAnUnreachableBusWithItsOwnStatus) {
  test::TempDir dir;
  auto r = run_ctl({"--bus-address", dead_bus(dir), "list"});
  EXPECT_EQ(r.code, kExitUnreachable);
  EXPECT_EQ(r.err.rfind("mcimctl: NoServer: ", 0), 0u) << r.err;
}

}  // namespace
}  // namespace mcimd::ctl
