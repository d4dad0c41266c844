// mcim-operator's enrolment and platform validation run as a process against devices made in
// software: EKs and AKs as OpenSSL keys, EK certificates from a test CA, quotes signed the way a
// TPM signs them, and TPM2_ActivateCredential redone with the EK's private key.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attestation/credential.hpp"
#include "attestation/jws.hpp"
#include "attestation/verifier.hpp"
#include "common/bytes.hpp"
#include "common/file.hpp"
#include "operator/registry.hpp"
#include "protocol/evidence.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;
namespace fs = std::filesystem;

namespace {

const std::string kBinary = MCIMD_BINARY_DIR "/operator/mcim-operator";

// TPM2_ActivateCredential in software: what the device's TPM releases for the challenge,
// nullopt where the TPM fails the integrity check.
std::optional<Bytes> activate(EVP_PKEY* ek_private, const Bytes& ek_public, const Bytes& name,
                              const protocol::CredentialChallenge& c) {
  auto activation = activate_credential(ek_private, ek_public, name, c);
  if (!activation.ek_error.empty()) throw std::runtime_error(activation.ek_error);
  return activation.released;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

const char* const kHonestNonce = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";

// One gateway: an EK of the parameter's type with a certificate from the test CA, an ECC AK,
// and a measured boot whose log replays into PCRs 0, 4 and 7.
class AnOperator : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    ek_ = std::string(GetParam()) == "rsa" ? rsa_key() : ec_key();
    ek_public_ = tpm_public(ek_.get(), kEkAttributes);
    ek_cert_ = ca_.issue_ek(ek_.get());
    ak_public_ = tpm_public(ak_.get(), kAkAttributes);
    device_ = to_hex(*ak_name(ak_public_));
    ca_pem_ = write("ca.pem", ca_.pem());
    log_.add(0, ev::kSCrtmVersion, "firmware 1.0");
    log_.add_variable(7, ev::kEfiVariableDriverConfig, kEfiGlobalVariable, "SecureBoot", {1});
    log_.add_application("\\EFI\\BOOT\\BOOTX64.EFI", "shim image");
    for (uint32_t pcr : {0u, 4u, 7u}) log_.add(pcr, ev::kSeparator, std::string(4, '\0'));
    pcrs_ = replay_event_log(*parse_event_log(log_.bytes()))->pcrs[alg::kSha256];
  }

  std::string write(const std::string& name, std::string_view content) {
    const fs::path p = dir_.path() / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
  std::string write(const std::string& name, const Bytes& content) {
    return write(name, std::string_view(reinterpret_cast<const char*>(content.data()), content.size()));
  }
  std::string read(const std::string& path) { return *read_text_file(path, 1u << 24); }

  test::RunResult op(std::vector<std::string> args) {
    args.insert(args.begin(), kBinary);
    return test::run(args);
  }

  std::string request_file(bool with_certificate = true, const Bytes* ak_public = nullptr) {
    protocol::EnrolmentRequest r;
    r.ek_public = ek_public_;
    if (with_certificate) r.ek_certificate = ek_cert_;
    r.ak_public = ak_public ? *ak_public : ak_public_;
    return write("request.json", protocol::to_json(r));
  }

  // enroll, then the secret the TPM releases for its challenge.
  Bytes enroll() {
    auto r = op({"enroll", "--request", request_file(), "--state", state_, "--ca", ca_pem_});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto challenge = protocol::credential_challenge_from_json(r.out);
    if (!challenge) throw std::runtime_error("challenge: " + challenge.error().message + "\n" + r.out);
    auto secret = activate(ek_.get(), ek_public_, *ak_name(ak_public_), *challenge);
    if (!secret) throw std::runtime_error("the challenge does not activate");
    return *secret;
  }

  void enroll_and_finish() {
    const Bytes secret = enroll();
    auto r = op({"enroll-finish", "--state", state_, "--secret", to_hex(secret)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  Bytes pcr_digest(const std::map<unsigned, Bytes>& values) {
    Bytes concat;
    for (const auto& [pcr, value] : values) concat.insert(concat.end(), value.begin(), value.end());
    return sha(alg::kSha256, concat);
  }

  std::map<unsigned, Bytes> quoted_pcrs() { return {{0, pcrs_[0]}, {4, pcrs_[4]}, {7, pcrs_[7]}}; }

  // Evidence as mcimd sends it; every quote made here has a later clock than the one before.
  protocol::Evidence evidence(const Bytes& nonce, EVP_PKEY* ak = nullptr, QuoteSpec q = {}) {
    ak = ak ? ak : ak_.get();
    protocol::Evidence ev;
    ev.nonce = nonce;
    ev.ak_public = tpm_public(ak, kAkAttributes);
    ev.pcrs = {{"sha256", quoted_pcrs()}};
    ev.ek_certificate = ek_cert_;
    ev.event_log = log_.bytes();
    q.nonce = evidence_qualifying_data(nonce);
    q.selection = {{alg::kSha256, {0, 4, 7}}};
    q.pcr_digest = pcr_digest(quoted_pcrs());
    if (q.clock == QuoteSpec{}.clock) q.clock = next_clock();
    ev.quote_message = attest_message(q);
    ev.quote_signature = tpm_sign(ak, ev.quote_message);
    return ev;
  }
  std::string evidence_file(const protocol::Evidence& ev) { return write("evidence.json", protocol::to_json(ev)); }
  uint64_t next_clock() { return clock_ += 1000; }

  test::RunResult verify(const protocol::Evidence& ev, const std::string& nonce = kHonestNonce,
                         std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"verify", "--state", state_, "--evidence", evidence_file(ev), "--nonce", nonce};
    args.insert(args.end(), extra.begin(), extra.end());
    return op(args);
  }

  static void expect_refused(const test::RunResult& r, const std::string& check) {
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "  " + check + ": ")) << "stderr does not list " << check << ":\n" << r.err;
    EXPECT_TRUE(contains(r.out, "FAIL  " + check)) << r.out;
  }

  test::TempDir dir_;
  std::string state_ = (dir_.path() / "state").string();
  TestCa ca_;
  EvpPkey ek_;
  Bytes ek_public_;
  Bytes ek_cert_;
  EvpPkey ak_ = ec_key();
  Bytes ak_public_;
  std::string device_;
  std::string ca_pem_;
  EventLogBuilder log_;
  std::map<unsigned, Bytes> pcrs_;
  uint64_t clock_ = 10000;
  const Bytes nonce_ = *from_hex(kHonestNonce, "nonce");
};

// --- enrolment -----------------------------------------------------------------------------------

TEST_P(AnOperator, EnrolsADeviceThatReleasesTheCredentialSecret) {
  const Bytes secret = enroll();
  ASSERT_EQ(secret.size(), 32u);
  auto r = op({"enroll-finish", "--state", state_, "--secret", to_hex(secret)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "device: " + device_ + "\nstate: enrolled\n");
}

TEST_P(AnOperator, KeepsItsStatePrivateAndNeverTheSecretInClear) {
  const Bytes secret = enroll();
  struct stat st {};
  ASSERT_EQ(::stat(state_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  const fs::path database = fs::path(state_) / "registry.db";
  ASSERT_EQ(::stat(database.c_str(), &st), 0);
  // The database and its write-ahead log and index beside it.
  for (const auto& entry : fs::directory_iterator(state_)) {
    ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << entry.path();
  }
  // The pending record holds the secret's hash...
  auto registry = op::Registry::open_state_dir(state_, /*create=*/false);
  ASSERT_TRUE(registry) << registry.error().describe();
  auto record = registry->find(*ak_name(ak_public_));
  ASSERT_TRUE(record && *record);
  EXPECT_EQ((*record)->pending_secret_sha256, sha(alg::kSha256, secret));
  // ...and no file the secret itself.
  for (const auto& entry : fs::recursive_directory_iterator(state_)) {
    if (!entry.is_regular_file()) continue;
    const std::string content = read(entry.path().string());
    EXPECT_FALSE(contains(content, to_hex(secret))) << entry.path();
    EXPECT_FALSE(contains(content, base64url_encode(secret))) << entry.path();
  }
}

TEST_P(AnOperator, RefusesAnActivationWithAnotherSecret) {
  (void)enroll();
  auto r = op({"enroll-finish", "--state", state_, "--secret", std::string(64, '5')});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.err, "activation failed: the AK is not in the TPM of that EK")) << r.err;
  // The device stays unenrolled.
  expect_refused(verify(evidence(nonce_)), "ak.enrolled");
}

TEST_P(AnOperator, AcceptsTheActivationAsMcimctlPrintsIt) {
  const Bytes secret = enroll();
  const std::string activation = write("activation.json", nlohmann::json{{"secret", to_hex(secret)}}.dump());
  auto r = op({"enroll-finish", "--state", state_, "--activation", activation, "--device", device_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("device"), device_);
  EXPECT_EQ(j.at("state"), "enrolled");
}

TEST_P(AnOperator, WritesTheChallengeToAFileWhenAsked) {
  const std::string out = (dir_.path() / "challenge.json").string();
  const std::string tools = (dir_.path() / "cred.out").string();
  auto r = op({"enroll", "--request", request_file(), "--state", state_, "--out", out, "--out-tpm2-tools", tools,
               "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("device"), device_);
  EXPECT_EQ(j.at("state"), "pending");
  auto challenge = protocol::credential_challenge_from_json(read(out));
  ASSERT_TRUE(challenge) << challenge.error().message;
  EXPECT_EQ(*read_file(tools), to_tpm2_tools_credential(*challenge));
}

TEST_P(AnOperator, RefusesAnEkCertificateFromAnotherManufacturer) {
  TestCa other("another TPM manufacturer");
  auto r = op({"enroll", "--request", request_file(), "--state", state_, "--ca", write("other.pem", other.pem())});
  expect_refused(r, "ek.chain");
}

TEST_P(AnOperator, RequiresAnEkCertificateWhenGivenCas) {
  auto r = op({"enroll", "--request", request_file(/*with_certificate=*/false), "--state", state_, "--ca", ca_pem_});
  expect_refused(r, "ek.chain");
  EXPECT_TRUE(contains(r.err, "no EK certificate")) << r.err;
}

TEST_P(AnOperator, RefusesAnEkWithoutACertificateUnlessTheOperatorAllowsIt) {
  auto refused = op({"enroll", "--request", request_file(/*with_certificate=*/false), "--state", state_});
  expect_refused(refused, "ek.chain");
  EXPECT_TRUE(contains(refused.err, "--allow-uncertified-ek")) << refused.err;

  auto allowed = op({"enroll", "--request", request_file(/*with_certificate=*/false), "--state", state_,
                     "--allow-uncertified-ek"});
  ASSERT_EQ(allowed.exit_code, 0) << allowed.err;
  // The choice is in the device's record...
  {
    auto registry = op::Registry::open_state_dir(state_, /*create=*/false);
    ASSERT_TRUE(registry) << registry.error().describe();
    auto record = registry->find(*ak_name(ak_public_));
    ASSERT_TRUE(record && *record);
    EXPECT_TRUE((*record)->uncertified_ek);
  }
  auto challenge = protocol::credential_challenge_from_json(allowed.out);
  ASSERT_TRUE(challenge) << allowed.out;
  auto secret = activate(ek_.get(), ek_public_, *ak_name(ak_public_), *challenge);
  ASSERT_TRUE(secret);
  ASSERT_EQ(op({"enroll-finish", "--state", state_, "--secret", to_hex(*secret)}).exit_code, 0);

  // ...and in every verification: not checked, never silently absent or "pass".
  auto uncertified = [&] {  // fresh evidence each time: a quote is accepted once
    auto ev = evidence(nonce_);
    ev.ek_certificate.reset();
    return ev;
  };
  auto r = verify(uncertified());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "SKIP  ek.chain: not checked: the EK has no certificate; the operator enrolled it as "
                              "uncertified (--allow-uncertified-ek)"))
      << r.out;
  auto j = verify(uncertified(), kHonestNonce, {"--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  bool seen = false;
  const auto doc = nlohmann::json::parse(j.out);
  for (const auto& c : doc.at("checks"))
    if (c.at("name") == "ek.chain") {
      seen = true;
      EXPECT_EQ(c.at("status"), "not checked") << c.dump();
    }
  EXPECT_TRUE(seen) << j.out;
  // With a CA bundle the uncertified EK fails, and says why.
  auto with_ca = verify(uncertified(), kHonestNonce, {"--ca", ca_pem_});
  expect_refused(with_ca, "ek.chain");
  EXPECT_TRUE(contains(with_ca.err, "enrolled as uncertified")) << with_ca.err;
}

TEST_P(AnOperator, ShowsTheEkChainAsNotCheckedWithoutACaBundle) {
  enroll_and_finish();
  auto r = verify(evidence(nonce_));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "SKIP  ek.chain: not checked: no EK CA bundle given")) << r.out;
  auto enrol = op({"enroll", "--request", request_file(), "--state", (dir_.path() / "other-state").string(),
                   "--out", (dir_.path() / "c.json").string()});
  ASSERT_EQ(enrol.exit_code, 0) << enrol.err;
}

TEST_P(AnOperator, RefusesAnAkThatIsNotARestrictedSigningKey) {
  const Bytes unrestricted = tpm_public(ak_.get(), kAkAttributes & ~attr::kRestricted);
  auto r = op({"enroll", "--request", request_file(true, &unrestricted), "--state", state_});
  expect_refused(r, "ak.attributes");
}

// --- remote validation ---------------------------------------------------------------------------

TEST_P(AnOperator, TrustsHonestEvidenceFromAnEnrolledDevice) {
  enroll_and_finish();
  auto r = verify(evidence(nonce_), kHonestNonce, {"--ca", ca_pem_});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "device: " + device_)) << r.out;
  EXPECT_TRUE(contains(r.out, "pass  ak.enrolled")) << r.out;
  EXPECT_TRUE(contains(r.out, "pass  ek.chain")) << r.out;
  EXPECT_TRUE(contains(r.out, "pass  eventlog.replay")) << r.out;
  EXPECT_TRUE(contains(r.out, "verdict: trusted")) << r.out;
  EXPECT_FALSE(contains(r.out, "FAIL")) << r.out;

  auto j = op({"verify", "--state", state_, "--evidence", evidence_file(evidence(nonce_)), "--nonce", kHonestNonce,
               "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc.at("device"), device_);
  EXPECT_EQ(doc.at("ok"), true);
  bool signature = false;
  for (const auto& c : doc.at("checks")) {
    EXPECT_TRUE(c.at("passed").get<bool>()) << c.dump();
    signature = signature || c.at("name") == "quote.signature";
  }
  EXPECT_TRUE(signature);
}

TEST_P(AnOperator, RefusesEvidenceForAnotherNonce) {
  enroll_and_finish();
  auto r = verify(evidence(Bytes(32, 0x77)));
  expect_refused(r, "quote.nonce");
}

TEST_P(AnOperator, RefusesEvidenceFromAnUnenrolledAk) {
  enroll_and_finish();
  EvpPkey stranger = ec_key();
  auto r = verify(evidence(nonce_, stranger.get()));
  expect_refused(r, "ak.enrolled");
  // Every other check still ran and passed: the failure is the enrolment alone.
  EXPECT_TRUE(contains(r.out, "pass  quote.signature")) << r.out;
}

TEST_P(AnOperator, RefusesEvidenceWhoseCountersWentBack) {
  enroll_and_finish();
  QuoteSpec later;
  later.reset_count = 5;
  later.clock = 50000;
  auto first = verify(evidence(nonce_, nullptr, later));
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;

  QuoteSpec earlier_reset;
  earlier_reset.reset_count = 4;
  earlier_reset.clock = 90000;
  expect_refused(verify(evidence(nonce_, nullptr, earlier_reset)), "quote.clock");

  // The very same evidence again is a replay too.
  auto again = verify(evidence(nonce_, nullptr, later));
  expect_refused(again, "quote.clock");
  EXPECT_TRUE(contains(again.err, "replayed or stale evidence")) << again.err;

  QuoteSpec next = later;
  next.clock = 60000;
  EXPECT_EQ(verify(evidence(nonce_, nullptr, next)).exit_code, 0);
}

TEST_P(AnOperator, AppliesTheReferencePolicy) {
  enroll_and_finish();
  const std::string good = write("good.yaml", "required_pcrs:\n  sha256: [0, 4, 7]\npcrs:\n  sha256:\n    7: [\"" +
                                                  to_hex(pcrs_[7]) + "\"]\nrequire_event_log: true\n");
  auto r = verify(evidence(nonce_), kHonestNonce, {"--policy", good});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "pass  policy.pcr[7]")) << r.out;

  const std::string bad =
      write("bad.yaml", "pcrs:\n  sha256:\n    7: [\"" + std::string(64, 'a') + "\"]\n");
  expect_refused(verify(evidence(nonce_), kHonestNonce, {"--policy", bad}), "policy.pcr[7]");
}

// --- challenge and signed policies ---------------------------------------------------------------

TEST(TheQualifyingDataCommand, PrintsWhatTpm2CheckquoteNeedsForEachDomain) {
  test::TempDir dir;
  const auto payload = dir.path() / "report.json";
  std::ofstream(payload, std::ios::binary) << std::string("\x01\x02", 2);
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  } cases[] = {
      {{"--domain", "evidence", "--payload-hex", "0102"},
       "a9dda7d4121c9923f5d2e05684077af51f8c161757fd6ca6cf1d51daecde63ff"},
      {{"--domain", "report", "--payload-file", payload.string()},
       "3ef134374465fdae4723bcadb5f4af666c911456b654b64206c316c5436a47a7"},
      {{"--domain", "install-receipt", "--payload-hex", "0102"},
       "2beae5cdcf86b370c504f44f47adf35603cf561f545b7ff30f51dfc2914bf375"},
      {{"--domain", "deletion-receipt", "--payload-hex", "0102"},
       "71fec36dbb6919ae72b6cf6e494db2c7bd6cd1b2096a2b185cfc188f37a54311"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv{kBinary, "qualifying-data"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = test::run(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, c.expected + "\n");
  }
  auto j = test::run({kBinary, "qualifying-data", "--domain", "evidence", "--payload-hex", "0102", "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc.at("label"), "mcimd/quote/operator-evidence/v1");
  EXPECT_EQ(doc.at("qualifying_data"), cases[0].expected);
  for (const auto& bad : std::vector<std::vector<std::string>>{
           {"--domain", "receipt", "--payload-hex", "00"},
           {"--domain", "evidence", "--payload-hex", "0g"},
           {"--domain", "evidence"},
           {"--domain", "evidence", "--payload-file", (dir.path() / "absent").string()}}) {
    std::vector<std::string> argv{kBinary, "qualifying-data"};
    argv.insert(argv.end(), bad.begin(), bad.end());
    auto r = test::run(argv);
    EXPECT_EQ(r.exit_code, 2) << bad[1] << " " << r.err;
    EXPECT_TRUE(contains(r.err, "--")) << r.err;
  }
}

TEST(TheChallengeCommand, PrintsAFreshNonceOf32Bytes) {
  auto a = test::run({kBinary, "challenge"});
  auto b = test::run({kBinary, "challenge", "--json"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  ASSERT_EQ(a.out.size(), 65u) << a.out;
  EXPECT_TRUE(from_hex(a.out.substr(0, 64), "nonce"));
  const std::string other = nlohmann::json::parse(b.out).at("nonce");
  EXPECT_EQ(other.size(), 64u);
  EXPECT_NE(other, a.out.substr(0, 64));
}

TEST_P(AnOperator, SignsAPolicyThatJwsVerifyAcceptsWithItsCertificate) {
  const std::string key = (dir_.path() / "policy.key").string(), cert = (dir_.path() / "policy.crt").string();
  auto g = op({"policy-keygen", "--out-key", key, "--out-cert", cert, "--subject", "CN=mcimd test policy signer"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const std::string yaml = "required_pcrs:\n  sha256: [0, 7]\nrequire_event_log: true\n";
  const std::string policy = write("policy.yaml", yaml);
  auto s = op({"policy-sign", "--policy", policy, "--key", key, "--cert", cert});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  ASSERT_FALSE(s.out.empty());
  const std::string jws = s.out.substr(0, s.out.size() - 1);

  auto trust = CaBundle::from_pem(read(cert));
  ASSERT_TRUE(trust) << trust.error().message;
  auto content = jws_verify(jws, *trust);
  ASSERT_TRUE(content) << content.error().message;
  EXPECT_EQ(content->payload, bytes_of(yaml));
  ASSERT_EQ(content->x5c.size(), 1u);

  // A JWS from another signer is not accepted with this certificate.
  auto other = CaBundle::from_pem(ca_.pem());
  ASSERT_TRUE(other) << other.error().message;
  auto untrusted = jws_verify(jws, *other);
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().code, Code::NotAuthorized) << untrusted.error().message;

  // Written to a file: exactly the compact form, and its digest printed.
  const std::string out = (dir_.path() / "policy.jws").string();
  auto f = op({"policy-sign", "--policy", policy, "--key", key, "--cert", cert, "--out", out, "--json"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  const std::string file = read(out);
  EXPECT_TRUE(jws_verify(file, *trust));
  EXPECT_EQ(nlohmann::json::parse(f.out).at("policy_digest"), to_hex(sha(alg::kSha256, file)));
}

// --- semi-autonomous validation ------------------------------------------------------------------

class ASemiAutonomousReport : public AnOperator {
 protected:
  void SetUp() override {
    AnOperator::SetUp();
    enroll_and_finish();
    policy_jws_ = write("policy.jws", signed_policy("require_event_log: true\n"));
    report_.nonce = nonce_;
    report_.policy_digest = sha(alg::kSha256, read(policy_jws_));
    report_.trusted = true;
    report_.checks = {{"policy.signature", true, "signed by the operator"}, {"policy.pcr[7]", true, "allowed"}};
    report_.pcrs = {{"sha256", quoted_pcrs()}};
    report_.event_log = log_.bytes();  // the policy requires it
  }

  // A policy signed by the operator's key, its certificate in x5c.
  std::string signed_policy(const std::string& yaml) { return *jws_sign(bytes_of(yaml), signer_.key.get(), {signer_.der()}); }

  struct Files {
    std::string report, message, signature;
  };
  // The report and a quote in the platform-report domain over its bytes and `quoted` PCR values.
  Files make(const protocol::PlatformReport& report, std::optional<std::map<unsigned, Bytes>> quoted = std::nullopt,
             EVP_PKEY* signer = nullptr) {
    const std::string json = protocol::to_json(report);
    QuoteSpec q;
    q.nonce = protocol::qualifying_data(protocol::QuoteDomain::PlatformReport, bytes_of(json));
    q.selection = {{alg::kSha256, {0, 4, 7}}};
    q.pcr_digest = pcr_digest(quoted ? *quoted : quoted_pcrs());
    q.clock = next_clock();
    const Bytes message = attest_message(q);
    return {write("report.json", json), write("quote.msg", message),
            write("quote.sig", tpm_sign(signer ? signer : ak_.get(), message))};
  }

  test::RunResult check(const Files& f, const std::string& nonce = kHonestNonce, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"verify-report",  "--state",     state_,  "--report",     f.report,
                                  "--quote-message", f.message,    "--quote-signature", f.signature,
                                  "--nonce",         nonce,        "--policy-jws",      policy_jws_};
    args.insert(args.end(), extra.begin(), extra.end());
    return op(args);
  }

  TestCa signer_{"operator policy signer"};
  std::string policy_jws_;
  protocol::PlatformReport report_;
};

TEST_P(ASemiAutonomousReport, IsAcceptedWhenEveryBindingHolds) {
  auto r = check(make(report_));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "device: " + device_)) << r.out;
  EXPECT_TRUE(contains(r.out, "device verdict (informational, not used): trusted")) << r.out;
  for (const char* name : {"ak.enrolled", "quote.signature", "quote.report_digest", "quote.pcr_digest",
                           "eventlog.replay", "policy.event_log", "report.nonce", "report.policy_digest"})
    EXPECT_TRUE(contains(r.out, std::string("pass  ") + name)) << name << "\n" << r.out;

  auto j = check(make(report_), kHonestNonce, {"--device", device_, "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc.at("ok"), true);
  EXPECT_EQ(doc.at("device_verdict"), "trusted");
  EXPECT_EQ(doc.at("device_checks").size(), 2u);
}

TEST_P(ASemiAutonomousReport, IsRefusedForAnotherNonce) {
  expect_refused(check(make(report_), std::string(64, '9')), "report.nonce");
}

TEST_P(ASemiAutonomousReport, HashesThePolicyWithoutTheFilesLineEnd) {
  policy_jws_ = write("policy-newline.jws", read(policy_jws_) + "\n");
  auto r = check(make(report_));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_P(ASemiAutonomousReport, IsRefusedForAnotherPolicy) {
  auto f = make(report_);
  policy_jws_ = write("other.jws", signed_policy("require_ima_log: true\n"));
  expect_refused(check(f), "report.policy_digest");
}

TEST_P(ASemiAutonomousReport, IsRefusedWhenTheReportIsNotTheOneQuoted) {
  auto f = make(report_);
  auto edited = report_;
  edited.checks[1].reason = "allowed, honestly";
  write("report.json", protocol::to_json(edited));
  expect_refused(check(f), "quote.report_digest");
}

// The attack quote domains stop: evidence for a nonce that is the report's SHA-256 (what
// GetEvidence gives anyone who may call it) presented as the report's quote.
TEST_P(ASemiAutonomousReport, IsRefusedWithEvidenceQuotedForTheReportsHash) {
  auto f = make(report_);
  const std::string json = protocol::to_json(report_);
  QuoteSpec q;
  q.nonce = evidence_qualifying_data(sha(alg::kSha256, json));
  q.selection = {{alg::kSha256, {0, 4, 7}}};
  q.pcr_digest = pcr_digest(quoted_pcrs());
  q.clock = next_clock();
  const Bytes message = attest_message(q);
  write("quote.msg", message);
  write("quote.sig", tpm_sign(ak_.get(), message));
  auto r = check(f);
  expect_refused(r, "quote.report_digest");
  EXPECT_TRUE(contains(r.err, "evidence domain")) << r.err;
}

TEST_P(ASemiAutonomousReport, IsRefusedWhenItsPcrsAreNotTheQuotedOnes) {
  auto quoted = quoted_pcrs();
  quoted[7] = Bytes(32, 0xAB);  // the TPM's PCR 7 differs from what the report claims
  expect_refused(check(make(report_, quoted)), "quote.pcr_digest");

  auto extra = report_;
  extra.pcrs[0].values[8] = Bytes(32, 0);
  expect_refused(check(make(extra)), "quote.pcr_selection");
}

// The device's verdict is its software's opinion: the operator's own evaluation decides, both ways.
TEST_P(ASemiAutonomousReport, IsJudgedByTheOperatorsEvaluationNotTheDevicesVerdict) {
  auto untrusted = report_;
  untrusted.trusted = false;
  untrusted.checks[1] = {"policy.pcr[7]", false, "value not allowed"};
  auto r = check(make(untrusted));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "device verdict (informational, not used): untrusted")) << r.out;
  EXPECT_TRUE(contains(r.out, "device FAIL  policy.pcr[7]: value not allowed")) << r.out;

  // A report that says "trusted" for PCR values the policy does not allow is refused.
  policy_jws_ = write("strict.jws", signed_policy("pcrs:\n  sha256:\n    7: [\"" + std::string(64, 'a') + "\"]\n"));
  report_.policy_digest = sha(alg::kSha256, read(policy_jws_));
  r = check(make(report_));
  expect_refused(r, "policy.pcr[7]");
  EXPECT_TRUE(contains(r.out, "device verdict (informational, not used): trusted")) << r.out;
}

TEST_P(ASemiAutonomousReport, IsRefusedWithoutALogThePolicyNeeds) {
  auto bare = report_;
  bare.event_log.reset();
  expect_refused(check(make(bare)), "policy.event_log");
  // A log that does not replay to the quoted PCRs does not count either.
  EventLogBuilder other;
  other.add(7, ev::kSeparator, std::string(4, '\0'));
  bare.event_log = other.bytes();
  expect_refused(check(make(bare)), "eventlog.replay");
}

TEST_P(ASemiAutonomousReport, RefusesAPolicyDocumentThatDoesNotVerifyAsAUsageError) {
  std::string jws = read(policy_jws_);
  jws[jws.size() - 3] = jws[jws.size() - 3] == 'A' ? 'B' : 'A';  // the signature no longer verifies
  policy_jws_ = write("tampered.jws", jws);
  auto r = check(make(report_));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "--policy-jws")) << r.err;
}

TEST_P(ASemiAutonomousReport, IsRefusedWhenNoEnrolledAkSignedIt) {
  EvpPkey stranger = ec_key();
  expect_refused(check(make(report_, std::nullopt, stranger.get())), "ak.enrolled");
  expect_refused(check(make(report_, std::nullopt, stranger.get()), kHonestNonce, {"--device", device_}),
                 "quote.signature");
}

TEST_P(ASemiAutonomousReport, IsRefusedWhenReplayed) {
  auto f = make(report_);
  ASSERT_EQ(check(f).exit_code, 0);
  expect_refused(check(f), "quote.clock");
}

INSTANTIATE_TEST_SUITE_P(RsaAndEccEk, AnOperator, ::testing::Values("rsa", "ecc"));
INSTANTIATE_TEST_SUITE_P(RsaAndEccEk, ASemiAutonomousReport, ::testing::Values("rsa", "ecc"));

// --- bad input -----------------------------------------------------------------------------------

class AnOperatorGivenBadInput : public AnOperator {};

TEST_P(AnOperatorGivenBadInput, ExitsWithTwoNamingTheOption) {
  enroll_and_finish();
  const std::string ev = evidence_file(evidence(nonce_));
  const std::string garbage = write("garbage.txt", "not a document");
  const std::string bad_yaml = write("bad.yaml", "pcr: {}\n");
  struct Case {
    std::vector<std::string> args;
    std::string option;
  };
  const std::vector<Case> cases = {
      {{"enroll", "--state", state_}, "--request"},
      {{"enroll", "--request", garbage, "--state", state_}, "--request"},
      {{"enroll", "--request", (dir_.path() / "absent.json").string(), "--state", state_}, "--request"},
      {{"enroll", "--request", request_file(), "--state", state_, "--ca", garbage}, "--ca"},
      {{"enroll-finish", "--state", state_, "--secret", "abcd"}, "--secret"},
      {{"enroll-finish", "--state", state_, "--secret", std::string(64, 'g')}, "--secret"},
      {{"enroll-finish", "--state", state_}, "--secret"},
      {{"enroll-finish", "--state", state_, "--activation", garbage}, "--activation"},
      {{"enroll-finish", "--state", state_, "--secret", std::string(64, '1'), "--activation", garbage}, "--secret"},
      {{"verify", "--state", state_, "--evidence", ev, "--nonce", "xyz"}, "--nonce"},
      {{"verify", "--state", state_, "--evidence", ev, "--nonce", "0102"}, "--nonce"},
      {{"verify", "--state", state_, "--evidence", garbage, "--nonce", kHonestNonce}, "--evidence"},
      {{"verify", "--state", state_, "--evidence", ev, "--nonce", kHonestNonce, "--policy", bad_yaml}, "--policy"},
      {{"verify", "--state", (dir_.path() / "nowhere").string(), "--evidence", ev, "--nonce", kHonestNonce},
       "--state"},
      {{"verify", "--state", state_, "--nonce", kHonestNonce}, "--evidence"},
      {{"verify-report", "--state", state_, "--report", garbage, "--quote-message", garbage, "--quote-signature",
        garbage, "--nonce", kHonestNonce, "--policy-jws", garbage},
       "--report"},
      {{"policy-sign", "--policy", bad_yaml, "--key", ca_pem_, "--cert", ca_pem_}, "--key"},
      {{"policy-keygen", "--out-key", ca_pem_, "--out-cert", (dir_.path() / "c.pem").string(), "--subject", "x"},
       "--out-key"},
      {{"policy-keygen", "--out-key", (dir_.path() / "k.pem").string(), "--out-cert",
        (dir_.path() / "c.pem").string(), "--subject", "CN="},
       "--subject"},
      {{"enroll-now"}, "enroll-now"},
  };
  for (const auto& c : cases) {
    auto r = op(c.args);
    std::string line;
    for (const auto& a : c.args) line += a + " ";
    EXPECT_EQ(r.exit_code, 2) << line << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, c.option)) << line << "\n" << r.err;
  }
}

TEST_P(AnOperatorGivenBadInput, RefusesToSignAnInvalidPolicyNamingIt) {
  const std::string key = (dir_.path() / "policy.key").string(), cert = (dir_.path() / "policy.crt").string();
  ASSERT_EQ(op({"policy-keygen", "--out-key", key, "--out-cert", cert, "--subject", "signer"}).exit_code, 0);
  auto r = op({"policy-sign", "--policy", write("bad.yaml", "pcr: {}\n"), "--key", key, "--cert", cert});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "--policy")) << r.err;
  // A certificate that is not the key's.
  auto other = op({"policy-sign", "--policy", write("ok.yaml", "require_event_log: true\n"), "--key", key, "--cert",
                   ca_pem_});
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_TRUE(contains(other.err, "--cert")) << other.err;
}

INSTANTIATE_TEST_SUITE_P(EccEk, AnOperatorGivenBadInput, ::testing::Values("ecc"));

}  // namespace
