// mcim-operator as the demo scripts use it: run as a process for TS 35.208 set 1 in text and JSON,
// resynchronisation from AUTS, and bad input that must name the option and exit with 2.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "aka/milenage.hpp"
#include "aka/sqn.hpp"
#include "common/bytes.hpp"
#include "operator/cli.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace mcimd;

namespace {

const std::string kBinary = MCIMD_BINARY_DIR "/operator/mcim-operator";

// TS 35.208 test set 1.
const std::string kK = "465b5ce8b199b49faa5f0a2ee238a6bc";
const std::string kOp = "cdc202d5123e20f62b6d676ac72cb318";
const std::string kOpc = "cd63cb71954a9f4e48a5994e37a02baf";
const std::string kRand = "23553cbe9637a89d218ae64dae47bf35";
const std::string kSqn = "ff9bb4d0b607";
const std::string kAmf = "b9b9";

const char* const kSetOneText =
    "opc: cd63cb71954a9f4e48a5994e37a02baf\n"
    "mac_a: 4a9ffac354dfafb3\n"
    "mac_s: 01cfaf9ec4e871e9\n"
    "res: a54211d5e3ba50bf\n"
    "ck: b40ba9a3c58b2a05bbf0d987b21bf8cb\n"
    "ik: f769bcd751044604127672711c6d3441\n"
    "ak: aa689c648370\n"
    "ak_star: 451e8beca43b\n"
    "autn: 55f328b43577b9b94a9ffac354dfafb3\n";

std::vector<std::string> milenage_args(std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{kBinary, "milenage", "--k", kK, "--op", kOp, "--rand", kRand, "--sqn", kSqn,
                                "--amf", kAmf};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// AUTS as a USIM would send it for SQN_MS (TS 33.102 §6.3.3, AMF* = 0x0000), computed with the library.
std::string auts_for(uint64_t sqn_ms) {
  auto k = aka::OpenSslAes::create(*from_hex(kK, "k"));
  aka::Block opc, rand;
  auto opc_bytes = *from_hex(kOpc, "opc"), rand_bytes = *from_hex(kRand, "rand");
  std::copy(opc_bytes.begin(), opc_bytes.end(), opc.begin());
  std::copy(rand_bytes.begin(), rand_bytes.end(), rand.begin());
  const aka::Sqn sqn = aka::sqn_from_u64(sqn_ms);
  auto out = aka::milenage(*k, opc, rand, sqn, aka::Amf{0, 0});
  if (!out) throw std::runtime_error(out.error().describe());
  aka::Auts auts;
  for (std::size_t i = 0; i < 6; ++i) auts[i] = sqn[i] ^ out->ak_star[i];
  std::copy(out->mac_s.begin(), out->mac_s.end(), auts.begin() + 6);
  return to_hex(auts);
}

}  // namespace

TEST(TheMilenageCommand, PrintsTs35208SetOneAsNameValueLines) {
  auto r = test::run(milenage_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, kSetOneText);
  EXPECT_EQ(r.err, "");
}

TEST(TheMilenageCommand, PrintsTs35208SetOneAsOneJsonObjectFromOpc) {
  auto r = test::run({kBinary, "milenage", "--k", kK, "--opc", kOpc, "--rand", kRand, "--sqn", kSqn, "--amf", kAmf,
                      "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 9u);
  EXPECT_EQ(j.at("opc"), kOpc);
  EXPECT_EQ(j.at("mac_a"), "4a9ffac354dfafb3");
  EXPECT_EQ(j.at("mac_s"), "01cfaf9ec4e871e9");
  EXPECT_EQ(j.at("res"), "a54211d5e3ba50bf");
  EXPECT_EQ(j.at("ck"), "b40ba9a3c58b2a05bbf0d987b21bf8cb");
  EXPECT_EQ(j.at("ik"), "f769bcd751044604127672711c6d3441");
  EXPECT_EQ(j.at("ak"), "aa689c648370");
  EXPECT_EQ(j.at("ak_star"), "451e8beca43b");
  EXPECT_EQ(j.at("autn"), "55f328b43577b9b94a9ffac354dfafb3");
}

TEST(TheMilenageCommand, AcceptsUpperCaseAndA0xPrefix) {
  auto r = test::run({kBinary, "milenage", "--k", "0x465B5CE8B199B49FAA5F0A2EE238A6BC", "--op", kOp, "--rand", kRand,
                      "--sqn", "FF9BB4D0B607", "--amf", "B9B9"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, kSetOneText);
}

struct BadInput {
  std::string name;
  std::vector<std::string> argv;
  std::string option;  // must appear in stderr
};
void PrintTo(const BadInput& input, std::ostream* os) { *os << input.name; }

class TheMilenageCommandGivenBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(TheMilenageCommandGivenBadInput, ExitsWithTwoNamingTheOption) {
  auto r = test::run(GetParam().argv);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(GetParam().option), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

namespace {

std::vector<std::string> replace(std::vector<std::string> argv, const std::string& option, const std::string& value) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == option) argv[i + 1] = value;
  return argv;
}

std::vector<std::string> without(std::vector<std::string> argv, const std::string& option) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == option) {
      argv.erase(argv.begin() + static_cast<std::ptrdiff_t>(i), argv.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      break;
    }
  return argv;
}

std::vector<BadInput> bad_inputs() {
  const std::string auts = std::string(28, '0');
  return {
      {"ShortK", replace(milenage_args(), "--k", "465b5ce8"), "--k"},
      {"LongK", replace(milenage_args(), "--k", kK + "00"), "--k"},
      {"NonHexRand", replace(milenage_args(), "--rand", "zz553cbe9637a89d218ae64dae47bf35"), "--rand"},
      {"OddLengthSqn", replace(milenage_args(), "--sqn", "ff9bb4d0b60"), "--sqn"},
      {"ShortSqn", replace(milenage_args(), "--sqn", "ff9bb4d0"), "--sqn"},
      {"LongAmf", replace(milenage_args(), "--amf", "b9b900"), "--amf"},
      {"EmptyAmf", replace(milenage_args(), "--amf", ""), "--amf"},
      {"NonHexOp", replace(milenage_args(), "--op", "cdc202d5123e20f62b6d676ac72cb3g8"), "--op"},
      {"BothOpAndOpc", milenage_args({"--opc", kOpc}), "--opc"},
      {"NeitherOpNorOpc", without(milenage_args(), "--op"), "--op"},
      {"MissingRand", without(milenage_args(), "--rand"), "--rand"},
      {"UnknownOption", milenage_args({"--sqn-ms", "1"}), "--sqn-ms"},
      {"ShortAuts", {kBinary, "auts", "--k", kK, "--opc", kOpc, "--rand", kRand, "--auts", "00"}, "--auts"},
      {"AutsWithBothOpAndOpc",
       {kBinary, "auts", "--k", kK, "--op", kOp, "--opc", kOpc, "--rand", kRand, "--auts", auts},
       "--op"},
      {"AutsWithoutK", {kBinary, "auts", "--opc", kOpc, "--rand", kRand, "--auts", auts}, "--k"},
      {"UnknownSubcommand", {kBinary, "vectors"}, "vectors"},
  };
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Cases, TheMilenageCommandGivenBadInput, ::testing::ValuesIn(bad_inputs()),
                         [](const auto& info) { return info.param.name; });

TEST(TheSqnResyncCommand, RecoversSqnMsFromAnAutsTheUsimSent) {
  const std::string auts = auts_for(0x000000000123);
  auto json = test::run({kBinary, "auts", "--k", kK, "--op", kOp, "--rand", kRand, "--auts", auts, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j.at("sqn_ms"), "000000000123");
  EXPECT_EQ(j.at("mac_s"), auts.substr(12));

  auto text = test::run({kBinary, "auts", "--k", kK, "--opc", kOpc, "--rand", kRand, "--auts", auts});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out, "sqn_ms: 000000000123\nmac_s: " + auts.substr(12) + "\n");
}

TEST(TheSqnResyncCommand, ExitsNonZeroNamingMacSWhenTheAutsDoesNotVerify) {
  std::string auts = auts_for(0x000000000123);
  auts[27] = auts[27] == '0' ? '1' : '0';
  auto r = test::run({kBinary, "auts", "--k", kK, "--opc", kOpc, "--rand", kRand, "--auts", auts});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("MAC-S"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(TheMilenageCommandInProcess, NeverThrowsOnOddArguments) {
  const std::vector<std::vector<std::string>> cases = {
      {"mcim-operator"},
      {"mcim-operator", "milenage"},
      {"mcim-operator", "milenage", "--k"},
      {"mcim-operator", "milenage", "--k", "", "--op", "", "--rand", "", "--sqn", "", "--amf", ""},
      {"mcim-operator", "milenage", "--k", "0x", "--opc", "0x", "--rand", "-", "--sqn", "--amf", "--json"},
      {"mcim-operator", "auts", "--k", kK, "--k", kK, "--opc", kOpc, "--rand", kRand, "--auts", "zz"},
      {"mcim-operator", "milenage", "auts"},
  };
  for (const auto& args : cases) {
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    std::ostringstream out, err;
    int code = op::run_cli(static_cast<int>(argv.size()), argv.data(), out, err);
    EXPECT_EQ(code, op::kExitUsage) << args.size() << ": " << err.str();
    EXPECT_FALSE(err.str().empty());
  }
  std::vector<const char*> help{"mcim-operator", "--help"};
  std::ostringstream out, err;
  EXPECT_EQ(op::run_cli(2, help.data(), out, err), op::kExitOk);
  EXPECT_NE(out.str().find("milenage"), std::string::npos);
}

// The policy authority's side: a key, a signed PCR policy a gateway can check, and the rules the
// signer enforces itself (the TPM honours whatever the key signs, wherever the blobs go).
TEST(ThePcrPolicyCommands, SignAPolicyTheAuthorityCanCheckAndRefuseResettablePcrs) {
  test::TempDir dir;
  const auto key = (dir.path() / "authority.key").string();
  const auto pub = (dir.path() / "authority.pem").string();
  auto keygen = test::run({kBinary, "pcr-policy", "keygen", "--out", key, "--public-out", pub});
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
  EXPECT_EQ(std::filesystem::status(key).permissions() &
                (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
            std::filesystem::perms::none);
  const std::string pcr7 = "sha256:7=" + std::string(64, 'a');
  const std::string pcr16 = "sha256:16=" + std::string(64, 'b');
  const auto policy = (dir.path() / "policy.json").string();
  auto signed_policy = test::run({kBinary, "pcr-policy", "sign", "--key", key, "--pcr", pcr7, "--out", policy});
  ASSERT_EQ(signed_policy.exit_code, 0) << signed_policy.err;
  auto shown = test::run({kBinary, "pcr-policy", "show", policy, "--authority", pub, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  auto doc = nlohmann::json::parse(shown.out);
  EXPECT_EQ(doc.at("verified"), true);
  EXPECT_EQ(doc.at("pcrs").at("7"), std::string(64, 'a'));
  // Another authority's key does not verify it.
  const auto other = (dir.path() / "other.pem").string();
  ASSERT_EQ(test::run({kBinary, "pcr-policy", "keygen", "--out", (dir.path() / "other.key").string(), "--public-out",
                       other})
                .exit_code,
            0);
  auto foreign = test::run({kBinary, "pcr-policy", "show", policy, "--authority", other});
  EXPECT_EQ(foreign.exit_code, 1) << foreign.out;
  EXPECT_NE(foreign.err.find("NotAuthorized"), std::string::npos) << foreign.err;

  auto resettable = test::run({kBinary, "pcr-policy", "sign", "--key", key, "--pcr", pcr7, "--pcr", pcr16, "--out",
                               (dir.path() / "r.json").string()});
  EXPECT_EQ(resettable.exit_code, 2);
  EXPECT_NE(resettable.err.find("PCR 16"), std::string::npos) << resettable.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "r.json"));
  auto allowed = test::run({kBinary, "pcr-policy", "sign", "--key", key, "--pcr", pcr7, "--pcr", pcr16, "--out",
                            (dir.path() / "r.json").string(), "--allow-resettable-pcrs"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  auto only_resettable = test::run({kBinary, "pcr-policy", "sign", "--key", key, "--pcr", pcr16, "--out",
                                    (dir.path() / "o.json").string(), "--allow-resettable-pcrs"});
  EXPECT_EQ(only_resettable.exit_code, 2);
  EXPECT_NE(only_resettable.err.find("only a reboot"), std::string::npos) << only_resettable.err;
  auto two_banks = test::run({kBinary, "pcr-policy", "sign", "--key", key, "--pcr", pcr7, "--pcr",
                              "sha1:0=" + std::string(40, 'c'), "--out", (dir.path() / "b.json").string()});
  EXPECT_EQ(two_banks.exit_code, 2);
  EXPECT_NE(two_banks.err.find("one bank"), std::string::npos) << two_banks.err;
}
