// The trust foundation end to end, each attack performed against the real daemon on swtpm: the
// counter another TPM user tried to advance, store files edited by hand, PCR changes with and
// without a newly signed policy, the commands one AKA costs at the TPM, and a TPM that goes away
// or whose slots another client holds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "tests/support/mcimd_instance.hpp"

using namespace mcimd::test;
using nlohmann::json;

namespace {

constexpr uint32_t kCcPolicyPcr = 0x17F, kCcPolicyAuthorize = 0x16A, kCcEncryptDecrypt2 = 0x193,
                   kCcNvIncrement = 0x134, kCcPolicyNv = 0x149;

class ATrustedStore : public ::testing::Test {
 protected:
  explicit ATrustedStore(McimdOptions options = {}) : mcimd(options) {}

  void SetUp() override {
    ASSERT_TRUE(mcimd.start()) << mcimd.log();
    auto yaml = mcimd.dir() / "profile.yaml";
    std::ofstream(yaml) << kDemoProfileYaml;
    auto r = mcimd.mcimctl({"install", yaml.string()});
    std::filesystem::remove(yaml);
    ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  }

  RunResult authenticate(const Challenge& c) {
    return mcimd.mcimctl({"authenticate", "0", "--rand", c.rand, "--autn", c.autn, "--json"});
  }
  // AKA with a fresh challenge at SEQ `seq` (IND 0): RES must equal XRES.
  void expect_aka_works(uint64_t seq) {
    char sqn[13];
    std::snprintf(sqn, sizeof sqn, "%012llx", static_cast<unsigned long long>(seq << 5));
    auto c = make_challenge(mcimd, sqn);
    auto r = authenticate(c);
    ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
    EXPECT_EQ(json::parse(r.out).value("res", ""), c.xres);
  }
  // Rewrites the store's state as an attacker with write access to the files would; the MAC is
  // kept as it was.
  void edit_state(const std::function<void(json&)>& edit) {
    auto path = mcimd.store() / "store.json";
    std::ifstream in(path);
    json doc = json::parse(in);
    in.close();
    edit(doc.at("state"));
    std::ofstream(path, std::ios::trunc) << doc.dump();
  }
  void expect_start_refused_naming(const std::string& error) {
    EXPECT_FALSE(mcimd.start());
    EXPECT_NE(mcimd.wait_exit(std::chrono::seconds(15)), 0);
    EXPECT_NE(mcimd.log().find(error), std::string::npos) << mcimd.log();
  }

  McimdInstance mcimd;
};

}  // namespace

// Any TPM user could advance the anti-rollback counter and brick the store.
TEST_F(ATrustedStore, KeepsWorkingWhenAnotherProcessTriesToAdvanceTheCounter) {
  expect_aka_works(2);
  // Each refused by the TPM for its authorization: TPM_RC_BAD_AUTH (0x9a2) for the index's empty
  // or a guessed auth, TPM_RC_NV_AUTHORIZATION (0x149) for the owner, which may not write it.
  for (const auto& [attempt, code] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"tpm2_nvincrement", "0x01004d43"}, "0x000009a2"},
           {{"tpm2_nvincrement", "-P", "guess", "0x01004d43"}, "0x000009a2"},
           {{"tpm2_nvincrement", "-C", "o", "0x01004d43"}, "0x00000149"}}) {
    auto r = mcimd.tpm2(attempt);
    EXPECT_NE(r.exit_code, 0) << "accepted: " << attempt.back() << " " << r.out;
    EXPECT_NE(r.err.find(code), std::string::npos) << code << " expected: " << r.err;
  }
  ASSERT_EQ(mcimd.stop(), 0);
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  expect_aka_works(3);
  // Undefining the counter takes owner authorization, which swtpm leaves empty: mcimd says so.
  // Once the store exists an administrator sets one, and the counter stays where it is.
  EXPECT_NE(mcimd.log().find("owner authorization is empty"), std::string::npos) << mcimd.log();
  ASSERT_EQ(mcimd.stop(), 0);
  auto owner = mcimd.tpm2({"tpm2_changeauth", "-c", "o", "owner-secret"});
  ASSERT_EQ(owner.exit_code, 0) << owner.err;
  auto undefine = mcimd.tpm2({"tpm2_nvundefine", "0x01004d43"});
  EXPECT_NE(undefine.exit_code, 0) << "undefined without the owner's authorization";
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  expect_aka_works(4);
}

// Every SEQ set back to 0 by hand, the generation kept: an used (RAND, AUTN) was accepted again.
TEST_F(ATrustedStore, RefusesAnSqnArrayRolledBackByHandAndAnswersNothingFromIt) {
  auto used = make_challenge(mcimd, "000000000040");
  auto first = authenticate(used);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(json::parse(first.out).value("res", ""), used.xres) << "the first use is accepted";
  ASSERT_EQ(mcimd.stop(), 0);
  auto original = mcimd.dir() / "store.json.original";
  std::filesystem::copy_file(mcimd.store() / "store.json", original);
  edit_state([](json& s) {
    for (auto& seq : s["profiles"][0]["sqn"]["seq"]) seq = 0;
  });
  expect_start_refused_naming("StoreTampered");
  // Put back as it was, the daemon starts, and the used challenge stays used.
  std::filesystem::copy_file(original, mcimd.store() / "store.json", std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  auto replayed = authenticate(used);
  ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
  auto answer = json::parse(replayed.out);
  EXPECT_FALSE(answer.contains("res")) << answer.dump();
  EXPECT_TRUE(answer.contains("auts")) << answer.dump();
}

TEST_F(ATrustedStore, RefusesAPinnedSrkRewrittenByHand) {
  ASSERT_EQ(mcimd.stop(), 0);
  edit_state([](json& s) {
    std::string srk = s["srk"];
    srk[10] = srk[10] == 'A' ? 'B' : 'A';
    s["srk"] = srk;
  });
  EXPECT_FALSE(mcimd.start());
  EXPECT_NE(mcimd.wait_exit(std::chrono::seconds(15)), 0);
  // The pin is read before the TPM's counter is trusted: a changed pin is another TPM, or a
  // tampered store. Either way nothing is served.
  EXPECT_TRUE(mcimd.log().find("StoreTampered") != std::string::npos ||
              mcimd.log().find("TpmMismatch") != std::string::npos)
      << mcimd.log();
}

TEST_F(ATrustedStore, RefusesAProfileStateOrTheActiveProfileChangedByHand) {
  ASSERT_EQ(mcimd.stop(), 0);
  const auto path = mcimd.store() / "store.json";
  const auto original = mcimd.dir() / "store.json.original";
  std::filesystem::copy_file(path, original);
  const std::vector<std::function<void(json&)>> edits = {
      [](json& s) { s["profiles"][0]["state"] = "disabled"; },  // the enabled profile disabled
      [](json& s) { s["active"] = nullptr; },                   // no longer active
      [](json& s) { s["profiles"][0]["imsi"] = "001019999999999"; },
  };
  for (std::size_t i = 0; i < edits.size(); ++i) {
    SCOPED_TRACE("edit " + std::to_string(i));
    edit_state(edits[i]);
    expect_start_refused_naming("StoreTampered");
    std::filesystem::copy_file(original, path, std::filesystem::copy_options::overwrite_existing);
  }
  ASSERT_TRUE(mcimd.start()) << "the untouched store opens: " << mcimd.log();
  expect_aka_works(2);
}

// A firmware update (here: PCR 16 extended) comes with a newly signed policy: the profile keeps
// working. Without one it is refused, naming the PCR that differs.
TEST_F(ATrustedStore, KeepsWorkingAcrossAPcrChangeOnlyWithANewlySignedPolicy) {
  expect_aka_works(2);
  auto extended = mcimd.tpm2({"tpm2_pcrextend", "16:sha256=" + std::string(64, 'a')});
  ASSERT_EQ(extended.exit_code, 0) << extended.err;
  auto c = make_challenge(mcimd, "000000000060");
  auto refused = authenticate(c);
  ASSERT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("PlatformStateChanged"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("sha256:16"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find("sha256:7"), std::string::npos) << "only PCR 16 changed: " << refused.err;
  auto status = mcimd.mcimctl({"status", "--json"});
  EXPECT_NE(status.out.find("changed"), std::string::npos) << status.out;

  auto added = mcimd.approve_current_pcrs();
  ASSERT_EQ(added.exit_code, 0) << added.err << mcimd.log();
  auto answered = authenticate(c);  // the refused challenge consumed no SQN
  ASSERT_EQ(answered.exit_code, 0) << answered.err << mcimd.log();
  EXPECT_EQ(json::parse(answered.out).value("res", ""), c.xres);
  auto list = mcimd.mcimctl({"policy", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto policies = json::parse(list.out).at("policies");
  EXPECT_EQ(policies.size(), 2u);
}

// The platform changed while mcimd was down: it starts locked — nothing is served from a store
// it cannot verify, so no profile is listed, while attestation still works — and the newly
// signed policy unlocks the store.
TEST_F(ATrustedStore, StartsLockedAfterAnUnapprovedChangeAndUnlocksWithANewPolicy) {
  ASSERT_EQ(mcimd.stop(), 0);
  ASSERT_EQ(mcimd.tpm2({"tpm2_pcrextend", "16:sha256=" + std::string(64, 'b')}).exit_code, 0);
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  auto status = mcimd.mcimctl({"status", "--json"});
  EXPECT_EQ(json::parse(status.out).value("platform_state", ""), "changed") << status.out;
  auto list = mcimd.mcimctl({"--json", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out.find("8949001234567890123"), std::string::npos) << list.out;
  EXPECT_NE(mcimd.log().find("sha256:16 differs"), std::string::npos) << mcimd.log();
  auto evidence = mcimd.mcimctl({"attest", "evidence", "--nonce", "00112233"});
  EXPECT_EQ(evidence.exit_code, 0) << evidence.err << mcimd.log();
  ASSERT_EQ(mcimd.approve_current_pcrs().exit_code, 0) << mcimd.log();
  status = mcimd.mcimctl({"status", "--json"});
  EXPECT_EQ(json::parse(status.out).value("platform_state", ""), "trusted") << status.out;
  expect_aka_works(4);
}

TEST_F(ATrustedStore, RefusesAPolicyOfAnotherAuthority) {
  auto other_key = mcimd.dir() / "other.key";
  ASSERT_EQ(mcimd.operator_tool({"pcr-policy", "keygen", "--out", other_key.string()}).exit_code, 0);
  auto read = mcimd.tpm2({"tpm2_pcrread", "sha256:7,16"});
  auto values = mcimd.dir() / "other.pcrs";
  std::ofstream(values) << read.out;
  auto policy = mcimd.dir() / "other.json";
  ASSERT_EQ(mcimd.operator_tool({"pcr-policy", "sign", "--key", other_key.string(), "--pcrread", values.string(),
                                 "--out", policy.string(), "--allow-resettable-pcrs"})
                .exit_code,
            0);
  auto refused = mcimd.mcimctl({"policy", "add", policy.string()});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("NotAuthorized"), std::string::npos) << refused.err;
}

namespace {
class AStrictTrustedStore : public ATrustedStore {
 protected:
  AStrictTrustedStore() : ATrustedStore(strict()) {}
  static McimdOptions strict() {
    McimdOptions o;
    o.pcrs = "sha256:7";
    o.allow_resettable_pcrs = false;
    return o;
  }
};
}  // namespace

// PCR 16 can be reset by any process without a reboot: a policy naming it binds nothing.
TEST_F(AStrictTrustedStore, RefusesAPolicyBindingAResettablePcrUnlessTheConfigAllowsIt) {
  auto refused = mcimd.approve_current_pcrs("sha256:7,16");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("InvalidArgument"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("PCR 16"), std::string::npos) << refused.err;
  auto missing = mcimd.approve_current_pcrs("sha256:0");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("sha256:7"), std::string::npos) << "tpm.pcrs requires PCR 7: " << missing.err;
  expect_aka_works(2);
}

namespace {
class ACountedStore : public ATrustedStore {
 protected:
  ACountedStore() : ATrustedStore(counted()) {}
  static McimdOptions counted() {
    McimdOptions o;
    o.log_tpm_commands = true;
    return o;
  }
};
}  // namespace

// DESIGN.md: steady state is 3 × (PolicyPCR + PolicyAuthorize + EncryptDecrypt2) plus the
// counter; a profile bound to its deletion counter adds PolicyNV to each policy (verifiable
// deletion: a copy of K made before the deletion never satisfies its policy again). Counted at
// the TPM, from swtpm's own log of every command it received.
TEST_F(ACountedStore, AnswersAnAkaInThirteenTpmCommandsInSteadyState) {
  expect_aka_works(2);  // the first use loads K and unseals OPc
  std::size_t mark = mcimd.tpm().log_mark();
  for (uint64_t seq = 3; seq < 8; ++seq) expect_aka_works(seq);
  auto log = mcimd.tpm().commands_since(mark);
  EXPECT_EQ(log.codes.size(), 65u) << log.summary();
  EXPECT_EQ(log.count(kCcPolicyNv), 15u) << log.summary();
  EXPECT_EQ(log.count(kCcPolicyPcr), 15u) << log.summary();
  EXPECT_EQ(log.count(kCcPolicyAuthorize), 15u) << log.summary();
  EXPECT_EQ(log.count(kCcEncryptDecrypt2), 15u) << log.summary();
  EXPECT_EQ(log.count(kCcNvIncrement), 5u) << log.summary();
}

// A TPM that goes away gives a named TpmFailure at once; once it is back, the next call works
// without restarting mcimd.
TEST_F(ATrustedStore, AnswersTpmFailureWhileTheTpmIsGoneAndRecoversWhenItIsBack) {
  expect_aka_works(2);
  mcimd.tpm().stop();
  auto started = std::chrono::steady_clock::now();
  auto c = make_challenge(mcimd, "000000000060");
  auto gone = authenticate(c);
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("TpmFailure"), std::string::npos) << gone.err;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  mcimd.tpm().start_again();  // a power cycle: PCRs back to their start values, which the policy approves
  expect_aka_works(4);
}

// Another client of a TPM without a resource manager holds every object slot: a call that needs
// one gets a named error; once the slots are freed it works again. While mcimd keeps K loaded and
// another client needs a slot, mcimd gives K's up (and loads it again when it needs it).
TEST_F(ATrustedStore, NamesFullTpmSlotsAndRecoversWhenTheyAreFreed) {
  expect_aka_works(2);
  auto fill = [&](const std::string& tag) {
    int made = 0;
    for (int i = 0; i < 4; ++i) {
      auto primary = mcimd.tpm2({"tpm2_createprimary", "-C", "o", "-G", "ecc", "-c",
                                 (mcimd.dir() / (tag + std::to_string(i) + ".ctx")).string()});
      if (primary.exit_code != 0) break;
      ++made;
    }
    return made;
  };
  EXPECT_EQ(fill("a"), 2) << "mcimd's K held the third slot";
  ASSERT_EQ(mcimd.tpm2({"tpm2_flushcontext", "-t"}).exit_code, 0);  // K goes too
  EXPECT_EQ(fill("b"), 3) << "another client holds every slot";
  auto c = make_challenge(mcimd, "000000000060");
  auto full = authenticate(c);
  EXPECT_NE(full.exit_code, 0);
  EXPECT_NE(full.err.find("Busy"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("slot"), std::string::npos) << full.err;
  ASSERT_EQ(mcimd.tpm2({"tpm2_flushcontext", "-t"}).exit_code, 0);
  auto answered = authenticate(c);  // the refused call consumed no SQN
  ASSERT_EQ(answered.exit_code, 0) << answered.err;
  EXPECT_EQ(json::parse(answered.out).value("res", ""), c.xres);
  auto evidence = mcimd.mcimctl({"attest", "evidence", "--nonce", "00112233"});
  EXPECT_EQ(evidence.exit_code, 0) << evidence.err;
  expect_aka_works(4);
}

// Credential activation needs the AK, the EK, and the SRK for its salted session: with K kept
// loaded that is one object slot more than swtpm has. mcimd gives K's slot up and loads K again
// for the next AKA.
TEST_F(ATrustedStore, ActivatesACredentialWhileKeepingKLoadedBetweenAkas) {
  expect_aka_works(2);
  const auto work = mcimd.dir();
  ASSERT_EQ(mcimd.mcimctl({"attest", "endorsement", "--out", (work / "request.json").string()}).exit_code, 0);
  auto enroll = mcimd.operator_tool({"enroll", "--request", (work / "request.json").string(), "--state",
                                     (work / "operator").string(), "--out", (work / "challenge.json").string(),
                                     "--allow-uncertified-ek"});
  ASSERT_EQ(enroll.exit_code, 0) << enroll.err;
  auto activate = mcimd.mcimctl({"attest", "activate", "--challenge", (work / "challenge.json").string(), "--json"});
  ASSERT_EQ(activate.exit_code, 0) << activate.err << mcimd.log();
  std::ofstream(work / "activation.json") << activate.out;
  auto finish = mcimd.operator_tool({"enroll-finish", "--state", (work / "operator").string(), "--activation",
                                     (work / "activation.json").string()});
  EXPECT_EQ(finish.exit_code, 0) << "the TPM released the operator's secret: " << finish.err << finish.out;
  expect_aka_works(3);
}
