// Attestation end to end: mcimd on a private swtpm and bus, the operator's mcim-operator, and
// tpm2-tools as a verifier that is not ours. Enrol → challenge → verify, the three TR 33.812
// validation modes, and stale evidence refused.
#include <gtest/gtest.h>

#include <openssl/sha.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "common/bytes.hpp"
#include "tests/support/mcimd_instance.hpp"

using namespace mcimd::test;
using nlohmann::json;

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class AnEnrolledGateway : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(work());
    // The operator's policy signing certificate, trusted by the gateway for semi-autonomous mode.
    auto keygen = op({"policy-keygen", "--out-key", (work() / "op.key").string(), "--out-cert",
                      (work() / "op.pem").string(), "--subject", "Operator policy signer"});
    ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
    mcimd = std::make_unique<McimdInstance>(McimdOptions{
        "sha256:7,16", "tpm-aes",
        "attestation:\n  pcrs: [0, 7, 16]\n  event-log: \"\"\n  ima-log: \"\"\n  policy-trust: [" +
            (work() / "op.pem").string() + "]\n",
        {}});
    ASSERT_TRUE(mcimd->start()) << mcimd->log();

    auto request = ctl({"attest", "endorsement", "--ek", "ecc", "--out", (work() / "request.json").string()});
    ASSERT_EQ(request.exit_code, 0) << request.err << mcimd->log();
    // swtpm holds no certificate for the ECC P-256 EK: the operator must choose to enrol it.
    auto refused = op({"enroll", "--request", (work() / "request.json").string(), "--state", state(), "--out",
                       (work() / "challenge.json").string()});
    ASSERT_EQ(refused.exit_code, 1) << refused.err;
    ASSERT_NE(refused.err.find("--allow-uncertified-ek"), std::string::npos) << refused.err;
    auto enroll = op({"enroll", "--request", (work() / "request.json").string(), "--state", state(), "--out",
                      (work() / "challenge.json").string(), "--allow-uncertified-ek"});
    ASSERT_EQ(enroll.exit_code, 0) << enroll.err;
    auto activate = ctl({"attest", "activate", "--challenge", (work() / "challenge.json").string(), "--json"});
    ASSERT_EQ(activate.exit_code, 0) << activate.err << mcimd->log();
    std::ofstream(work() / "activation.json") << activate.out;
    auto finish = op({"enroll-finish", "--state", state(), "--activation", (work() / "activation.json").string()});
    ASSERT_EQ(finish.exit_code, 0) << finish.err;
  }

  std::filesystem::path work() const { return dir.path(); }
  std::string state() const { return (dir.path() / "operator-state").string(); }
  RunResult ctl(const std::vector<std::string>& args) { return mcimd->mcimctl(args); }
  RunResult op(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {binary("operator/mcim-operator").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
  std::string nonce() {
    auto r = op({"challenge"});
    EXPECT_EQ(r.exit_code, 0);
    return trim(r.out);
  }
  // What tpm2_checkquote -q needs for a payload (hex) in a quote domain.
  std::string qualifying_data(const std::string& domain, const std::string& payload_hex) {
    auto r = op({"qualifying-data", "--domain", domain, "--payload-hex", payload_hex});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return trim(r.out);
  }
  // Evidence for a nonce, also exported in tpm2-tools form under work()/<name>.
  std::filesystem::path evidence(const std::string& n, const std::string& name) {
    auto out = work() / (name + ".json");
    std::filesystem::create_directories(work() / name);
    auto r = ctl({"attest", "evidence", "--nonce", n, "--out", out.string(), "--tpm2-tools", (work() / name).string()});
    EXPECT_EQ(r.exit_code, 0) << r.err << mcimd->log();
    return out;
  }

  std::string read(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static std::string sha256_b64(const std::string& data) {
    mcimd::Bytes out(SHA256_DIGEST_LENGTH);
    SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(), out.data());
    return mcimd::base64url_encode(out);
  }
  static std::string sha256_hex(const std::string& data) {
    mcimd::Bytes out(SHA256_DIGEST_LENGTH);
    SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(), out.data());
    return mcimd::to_hex(out);
  }
  // The operator's semi-autonomous policy: PCR 16 as it is after a reset (all zeros).
  void sign_policy() {
    std::ofstream(work() / "policy.yaml") << "required_pcrs:\n  sha256: [16]\npcrs:\n  sha256:\n    16: [\""
                                          << std::string(64, '0') << "\"]\n";
    auto sign = op({"policy-sign", "--policy", (work() / "policy.yaml").string(), "--key", (work() / "op.key").string(),
                    "--cert", (work() / "op.pem").string(), "--out", (work() / "policy.jws").string()});
    ASSERT_EQ(sign.exit_code, 0) << sign.err;
  }
  // A report written by hand, as whoever can call GetEvidence or load the AK could: "trusted",
  // every check passed, for the PCR values the TPM holds now.
  std::string forged_report(const std::string& nonce_hex, const json& pcrs) {
    json checks = json::array({{{"name", "policy.pcr[16]"}, {"passed", true}, {"reason", "allowed"}}});
    json report = {{"format", "mcimd-platform-report-1"},
                   {"nonce", mcimd::base64url_encode(*mcimd::from_hex(nonce_hex, "nonce"))},
                   {"policy_digest", sha256_b64(read(work() / "policy.jws"))},
                   {"trusted", true},
                   {"checks", checks},
                   {"pcrs", pcrs}};
    return report.dump();
  }
  RunResult verify_report(const std::filesystem::path& report, const std::filesystem::path& msg,
                          const std::filesystem::path& sig, const std::string& n) {
    return op({"verify-report", "--state", state(), "--report", report.string(), "--quote-message", msg.string(),
               "--quote-signature", sig.string(), "--nonce", n, "--policy-jws", (work() / "policy.jws").string()});
  }

  TempDir dir;
  std::unique_ptr<McimdInstance> mcimd;
};

}  // namespace

TEST_F(AnEnrolledGateway, ProvesItsStateToTheOperatorsVerifierAndToTpm2Checkquote) {
  auto n = nonce();
  auto ev = evidence(n, "honest");
  auto verify = op({"verify", "--state", state(), "--evidence", ev.string(), "--nonce", n});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("SKIP  ek.chain: not checked: the EK has no certificate"), std::string::npos) << verify.out;
  // A verifier that is not ours accepts the same quote unchanged.
  auto d = work() / "honest";
  auto checkquote = [&](const std::string& qualifying) {
    return mcimd->tpm2({"tpm2_checkquote", "-u", (d / "ak.pub").string(), "-m", (d / "quote.msg").string(), "-s",
                        (d / "quote.sig").string(), "-f", (d / "quote.pcrs").string(), "-g", "sha256", "-q",
                        qualifying});
  };
  auto check = checkquote(qualifying_data("evidence", n));
  EXPECT_EQ(check.exit_code, 0) << check.err;
  // The quote is in the operator-evidence domain: the bare nonce is not what the TPM signed.
  EXPECT_NE(checkquote(n).exit_code, 0);
}

TEST_F(AnEnrolledGateway, HasStaleOrForeignEvidenceRefusedWithTheReasonNamed) {
  auto n = nonce();
  auto ev = evidence(n, "first");
  ASSERT_EQ(op({"verify", "--state", state(), "--evidence", ev.string(), "--nonce", n}).exit_code, 0);
  // The same evidence again: replayed.
  auto replay = op({"verify", "--state", state(), "--evidence", ev.string(), "--nonce", n});
  EXPECT_EQ(replay.exit_code, 1);
  EXPECT_NE((replay.out + replay.err).find("quote.clock"), std::string::npos) << replay.out << replay.err;
  // Fresh evidence checked against another nonce.
  auto n2 = nonce();
  auto ev2 = evidence(n2, "second");
  auto wrong = op({"verify", "--state", state(), "--evidence", ev2.string(), "--nonce", nonce()});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE((wrong.out + wrong.err).find("quote.nonce"), std::string::npos) << wrong.out << wrong.err;
  auto check = mcimd->tpm2({"tpm2_checkquote", "-u", (work() / "second" / "ak.pub").string(), "-m",
                            (work() / "second" / "quote.msg").string(), "-s", (work() / "second" / "quote.sig").string(),
                            "-f", (work() / "second" / "quote.pcrs").string(), "-g", "sha256", "-q",
                            qualifying_data("evidence", nonce())});
  EXPECT_NE(check.exit_code, 0);
}

TEST_F(AnEnrolledGateway, FailsARemotePolicyOnceAMeasuredPcrChanges) {
  // The operator's reference: PCR 16 as it is now (all zeros after reset).
  std::ofstream(work() / "policy.yaml") << "required_pcrs:\n  sha256: [0, 7, 16]\npcrs:\n  sha256:\n    16: [\""
                                        << std::string(64, '0') << "\"]\n";
  auto n = nonce();
  auto ok = op({"verify", "--state", state(), "--evidence", evidence(n, "before").string(), "--nonce", n, "--policy",
                (work() / "policy.yaml").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  ASSERT_EQ(mcimd->tpm2({"tpm2_pcrextend", "16:sha256=" + std::string(64, 'c')}).exit_code, 0);
  auto n2 = nonce();
  auto changed = op({"verify", "--state", state(), "--evidence", evidence(n2, "after").string(), "--nonce", n2,
                     "--policy", (work() / "policy.yaml").string()});
  EXPECT_EQ(changed.exit_code, 1);
  EXPECT_NE((changed.out + changed.err).find("policy.pcr[16]"), std::string::npos) << changed.out << changed.err;
}

TEST_F(AnEnrolledGateway, ValidatesItselfAgainstASignedPolicyAndReportsBoundToAQuote) {
  ASSERT_NO_FATAL_FAILURE(sign_policy());
  auto validate_and_check = [&](const std::string& name) {
    auto n = nonce();
    auto out = work() / name;
    auto v = ctl({"attest", "validate", "--policy", (work() / "policy.jws").string(), "--nonce", n, "--out", out.string()});
    EXPECT_EQ(v.exit_code, 0) << v.err << mcimd->log();
    return verify_report(out / "report.json", out / "quote.msg", out / "quote.sig", n);
  };
  auto trusted = validate_and_check("report-1");
  EXPECT_EQ(trusted.exit_code, 0) << trusted.out << trusted.err;
  ASSERT_EQ(mcimd->tpm2({"tpm2_pcrextend", "16:sha256=" + std::string(64, 'd')}).exit_code, 0);
  auto untrusted = validate_and_check("report-2");
  EXPECT_EQ(untrusted.exit_code, 1) << untrusted.out << untrusted.err;
  EXPECT_NE((untrusted.out + untrusted.err).find("policy.pcr[16]"), std::string::npos) << untrusted.out;
}

TEST_F(AnEnrolledGateway, RefusesAPolicySignedByAnUntrustedOperator) {
  auto keygen = op({"policy-keygen", "--out-key", (work() / "rogue.key").string(), "--out-cert",
                    (work() / "rogue.pem").string(), "--subject", "Rogue"});
  ASSERT_EQ(keygen.exit_code, 0);
  std::ofstream(work() / "policy.yaml") << "require_event_log: false\n";
  ASSERT_EQ(op({"policy-sign", "--policy", (work() / "policy.yaml").string(), "--key", (work() / "rogue.key").string(),
                "--cert", (work() / "rogue.pem").string(), "--out", (work() / "rogue.jws").string()})
                .exit_code,
            0);
  auto v = ctl({"attest", "validate", "--policy", (work() / "rogue.jws").string(), "--nonce", nonce()});
  EXPECT_NE(v.exit_code, 0);
  EXPECT_NE(v.err.find("NotAuthorized"), std::string::npos) << v.err;
}

// The attack quote domains stop: GetEvidence with nonce = SHA-256(report) used to give anyone
// allowed to call it a quote verify-report took for the report's own.
TEST_F(AnEnrolledGateway, RefusesAForgedTrustedReportBoundWithGetEvidence) {
  ASSERT_NO_FATAL_FAILURE(sign_policy());
  ASSERT_EQ(mcimd->tpm2({"tpm2_pcrextend", "16:sha256=" + std::string(64, 'e')}).exit_code, 0);
  const std::string n = nonce();
  // The attacker learns the PCR values from evidence for any nonce, writes the report for them,
  // and has the daemon quote its SHA-256.
  const json probe = json::parse(read(evidence(nonce(), "probe")));
  const std::string report = forged_report(n, probe.at("pcrs"));
  std::ofstream(work() / "forged.json", std::ios::binary) << report;
  evidence(sha256_hex(report), "bound");
  auto r = verify_report(work() / "forged.json", work() / "bound" / "quote.msg", work() / "bound" / "quote.sig", n);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("FAIL  quote.report_digest"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("evidence domain"), std::string::npos) << r.out;
  // Even bound, the operator's own evaluation refuses the extended PCR 16.
  EXPECT_NE(r.out.find("FAIL  policy.pcr[16]"), std::string::npos) << r.out;
}

// The attack that needs the operator's own evaluation: the AK blob is in the store with empty
// auth, so anyone who can read it quotes a forged report in the right domain.
TEST_F(AnEnrolledGateway, RefusesAForgedReportQuotedDirectlyWithTheAk) {
  ASSERT_NO_FATAL_FAILURE(sign_policy());
  ASSERT_EQ(mcimd->tpm2({"tpm2_pcrextend", "16:sha256=" + std::string(64, 'f')}).exit_code, 0);
  const std::string n = nonce();
  const json probe = json::parse(read(evidence(nonce(), "probe")));
  json sha256_only = json::array();
  for (const auto& bank : probe.at("pcrs"))
    if (bank.at("bank") == "sha256") sha256_only.push_back(bank);
  ASSERT_EQ(sha256_only.size(), 1u) << probe.dump();
  const std::string report = forged_report(n, sha256_only);
  const auto report_file = work() / "forged.json";
  std::ofstream(report_file, std::ios::binary) << report;
  auto qd = op({"qualifying-data", "--domain", "report", "--payload-file", report_file.string()});
  ASSERT_EQ(qd.exit_code, 0) << qd.err;
  // The AK's blobs, as store.json names them in the store's objects/ folder.
  std::ifstream store_file(mcimd->store() / "store.json");
  const json ak = json::parse(store_file).at("state").at("attestation").at("ak");
  const auto objects = mcimd->store() / "objects";
  const auto d = work();
  auto loaded = mcimd->tpm2({"tpm2_load", "-C", "0x81000001", "-u", (objects / ak.at("public").get<std::string>()).string(),
                             "-r", (objects / ak.at("private").get<std::string>()).string(), "-c",
                             (d / "ak.ctx").string()});
  ASSERT_EQ(loaded.exit_code, 0) << loaded.err;
  auto quoted = mcimd->tpm2({"tpm2_quote", "-c", (d / "ak.ctx").string(), "-l", "sha256:0,7,16", "-q", trim(qd.out),
                             "-m", (d / "forged.msg").string(), "-s", (d / "forged.sig").string(), "-g", "sha256"});
  ASSERT_EQ(quoted.exit_code, 0) << quoted.err;
  auto r = verify_report(report_file, d / "forged.msg", d / "forged.sig", n);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  // Every binding holds — it is the enrolled AK, in the report's domain, over the real PCRs...
  for (const char* name : {"ak.enrolled", "quote.signature", "quote.report_digest", "quote.pcr_digest"})
    EXPECT_NE(r.out.find(std::string("pass  ") + name), std::string::npos) << name << "\n" << r.out;
  // ...but the operator evaluates its policy itself, and the report's "trusted" is not a check.
  EXPECT_NE(r.out.find("FAIL  policy.pcr[16]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("device verdict (informational, not used): trusted"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("report.trusted"), std::string::npos) << r.out;
}

// Evidence carries the certificate of the EK the operator enrolled: here the RSA EK, which
// swtpm_setup certified with its local CA (playing the TPM vendor). The choice is kept in the
// store, so it survives a restart.
TEST(ACertifiedGateway, CarriesTheCertificateOfTheEkTypeItWasEnrolledWith) {
  McimdOptions options;
  options.provision_ek_certificates = true;
  options.extra_config = "attestation:\n  pcrs: [0, 7]\n  event-log: \"\"\n  ima-log: \"\"\n";
  McimdInstance m(options);
  ASSERT_TRUE(m.start()) << m.log();
  const auto work = m.dir();
  const std::string state = (work / "operator").string();
  const std::string ca = "--ca=" + Swtpm::local_ca_root_certificate().string();
  const std::string issuer = "--ca=" + Swtpm::local_ca_issuer_certificate().string();
  auto request = m.mcimctl({"attest", "endorsement", "--ek", "rsa", "--out", (work / "request.json").string()});
  ASSERT_EQ(request.exit_code, 0) << request.err << m.log();
  auto enroll = m.operator_tool({"enroll", "--request", (work / "request.json").string(), "--state", state, ca, issuer,
                                 "--out", (work / "challenge.json").string()});
  ASSERT_EQ(enroll.exit_code, 0) << enroll.err << enroll.out;
  auto activate = m.mcimctl({"attest", "activate", "--ek", "rsa", "--challenge", (work / "challenge.json").string(),
                             "--json"});
  ASSERT_EQ(activate.exit_code, 0) << activate.err << m.log();
  std::ofstream(work / "activation.json") << activate.out;
  ASSERT_EQ(m.operator_tool({"enroll-finish", "--state", state, "--activation", (work / "activation.json").string()})
                .exit_code,
            0);
  std::ifstream request_file(work / "request.json");
  const std::string rsa_certificate = json::parse(request_file).at("ek_certificate");
  for (int round = 0; round < 2; ++round) {
    const std::string n = std::string(32, round == 0 ? 'a' : 'b');
    auto ev = m.mcimctl({"attest", "evidence", "--nonce", n, "--out", (work / "evidence.json").string()});
    ASSERT_EQ(ev.exit_code, 0) << ev.err << m.log();
    std::ifstream evidence_file(work / "evidence.json");
    EXPECT_EQ(json::parse(evidence_file).value("ek_certificate", ""), rsa_certificate);
    auto verified = m.operator_tool({"verify", "--state", state, "--evidence", (work / "evidence.json").string(),
                                     "--nonce", n, ca, issuer});
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    EXPECT_NE(verified.out.find("pass  ek.chain"), std::string::npos) << verified.out;
    EXPECT_EQ(verified.out.find("SKIP"), std::string::npos) << verified.out;
    ASSERT_EQ(m.stop(), 0);
    ASSERT_TRUE(m.start()) << m.log();
  }
}
