// verify() over evidence made in software the way a TPM makes it: a good document passes every
// check, and each attack is refused with its named check.
#include <gtest/gtest.h>

#include "attestation/verifier.hpp"
#include "common/file.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;

namespace {

class EvidenceTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    ak_ = std::string(GetParam()) == "rsa" ? rsa_key() : ec_key();
    log_.add(0, ev::kSCrtmVersion, "firmware 1.0");
    log_.add_variable(7, ev::kEfiVariableDriverConfig, kEfiGlobalVariable, "SecureBoot", {1});
    app_ = log_.add_application("\\EFI\\BOOT\\BOOTX64.EFI", "shim image");
    for (uint32_t pcr : {0u, 4u, 7u}) log_.add(pcr, ev::kSeparator, std::string(4, '\0'));
    auto parsed = parse_event_log(log_.bytes());
    ASSERT_TRUE(parsed) << parsed.error().describe();
    pcrs_ = replay_event_log(*parsed)->pcrs[alg::kSha256];
    nonce_ = Bytes(32, 0x3C);
    evidence_ = make(nonce_);
    options_.nonce = nonce_;
  }

  protocol::Evidence make(const Bytes& nonce, QuoteSpec q = {}) {
    protocol::Evidence ev;
    ev.nonce = nonce;
    ev.ak_public = tpm_public(ak_.get(), kAkAttributes);
    ev.pcrs = {{"sha256", {{0, pcrs_[0]}, {4, pcrs_[4]}, {7, pcrs_[7]}}}};
    if (q.nonce.empty()) q.nonce = evidence_qualifying_data(nonce);
    if (q.selection.empty()) q.selection = {{alg::kSha256, {0, 4, 7}}};
    if (q.pcr_digest.empty()) q.pcr_digest = digest_of({0, 4, 7});
    ev.quote_message = attest_message(q);
    ev.quote_signature = tpm_sign(ak_.get(), ev.quote_message);
    ev.event_log = log_.bytes();
    return ev;
  }

  Bytes digest_of(std::vector<unsigned> pcrs) {
    Bytes concat;
    for (unsigned p : pcrs) concat.insert(concat.end(), pcrs_[p].begin(), pcrs_[p].end());
    return sha(alg::kSha256, concat);
  }

  static void expect_refused(const VerificationResult& r, const std::string& check, const std::string& reason = {}) {
    EXPECT_FALSE(r.ok);
    const Check* c = r.find(check);
    ASSERT_NE(c, nullptr) << "no check " << check << "; failures: " << r.failures();
    EXPECT_FALSE(c->passed) << check;
    if (!reason.empty()) {
      EXPECT_NE(c->reason.find(reason), std::string::npos) << c->reason;
    }
  }

  EvpPkey ak_;
  EventLogBuilder log_;
  std::vector<Bytes> app_;
  std::map<unsigned, Bytes> pcrs_;
  Bytes nonce_;
  protocol::Evidence evidence_;
  VerifierOptions options_;
};

TEST_P(EvidenceTest, FromAHealthyDevicePassesEveryCheck) {
  auto r = verify(evidence_, options_);
  EXPECT_TRUE(r.ok) << r.failures();
  for (const char* name : {"ak.public", "ak.attributes", "quote.format", "quote.signature", "quote.magic", "quote.type",
                           "quote.nonce", "quote.pcr_selection", "quote.pcr_digest", "eventlog.parse", "eventlog.replay"})
    EXPECT_NE(r.find(name), nullptr) << name;
  ASSERT_TRUE(r.clock);
  EXPECT_EQ(r.clock->reset_count, 1u);
  // Without a CA bundle the EK chain is visibly not checked, never absent.
  const Check* ek = r.find("ek.chain");
  ASSERT_NE(ek, nullptr);
  EXPECT_TRUE(ek->passed);
  EXPECT_TRUE(ek->not_checked);
  EXPECT_EQ(outcome(*ek), "not checked");
  EXPECT_TRUE(ek->reason.starts_with("not checked: no EK CA bundle given")) << ek->reason;
}

TEST_P(EvidenceTest, WithATamperedQuoteIsRefused) {
  evidence_.quote_message[evidence_.quote_message.size() - 1] ^= 1;
  expect_refused(verify(evidence_, options_), "quote.signature");
}

TEST_P(EvidenceTest, ForAnotherNonceIsRefused) {
  options_.nonce = Bytes(32, 0x77);
  expect_refused(verify(evidence_, options_), "quote.nonce", "replayed");
}

TEST_P(EvidenceTest, QuotedForTheBareNonceOrInAnotherDomainIsRefused) {
  QuoteSpec bare;
  bare.nonce = nonce_;  // a quote whose extraData is the nonce itself, as before quote domains
  auto r = verify(make(nonce_, bare), options_);
  expect_refused(r, "quote.nonce", "bare nonce");
  for (auto domain : {protocol::QuoteDomain::PlatformReport, protocol::QuoteDomain::InstallReceipt,
                      protocol::QuoteDomain::DeletionReceipt}) {
    QuoteSpec other;
    other.nonce = protocol::qualifying_data(domain, nonce_);
    expect_refused(verify(make(nonce_, other), options_), "quote.nonce",
                   "made in the " + std::string(protocol::short_name(domain)) + " domain");
  }
  // The same quote checked as what it is passes.
  QuoteSpec report;
  report.nonce = protocol::qualifying_data(protocol::QuoteDomain::PlatformReport, nonce_);
  options_.domain = protocol::QuoteDomain::PlatformReport;
  EXPECT_TRUE(verify(make(nonce_, report), options_).ok);
}

TEST_P(EvidenceTest, WithCountersGoingBackIsRefusedAsReplayed) {
  options_.last_clock = ClockInfo{500, 2, 0, true};  // the device was seen after a later reset
  expect_refused(verify(evidence_, options_), "quote.clock", "replayed or stale evidence");
  options_.last_clock = ClockInfo{500, 1, 3, true};  // a later restart
  expect_refused(verify(evidence_, options_), "quote.clock", "replayed or stale evidence");
  options_.last_clock = ClockInfo{1000, 1, 0, true};  // the same quote again
  expect_refused(verify(evidence_, options_), "quote.clock", "replayed or stale evidence");
  options_.last_clock = ClockInfo{999, 1, 0, true};
  EXPECT_TRUE(verify(evidence_, options_).ok);
}

TEST_P(EvidenceTest, WhosePcrValuesDoNotMatchTheDigestIsRefused) {
  evidence_.pcrs[0].values[7][0] ^= 1;
  auto r = verify(evidence_, options_);
  expect_refused(r, "quote.pcr_digest");
  EXPECT_TRUE(r.find("quote.signature")->passed);
}

TEST_P(EvidenceTest, WithExtraOrMissingPcrsIsRefused) {
  auto extra = evidence_;
  extra.pcrs[0].values[8] = Bytes(32, 0);
  expect_refused(verify(extra, options_), "quote.pcr_selection", "sha256:8 is not in the quote's selection");
  auto missing = evidence_;
  missing.pcrs[0].values.erase(4);
  expect_refused(verify(missing, options_), "quote.pcr_selection", "sha256:4 is quoted but its value is missing");
}

TEST_P(EvidenceTest, NotMadeByATpmIsRefused) {
  QuoteSpec q;
  q.magic = 0x12345678;
  expect_refused(verify(make(nonce_, q), options_), "quote.magic");
  QuoteSpec certify;
  certify.type = 0x8017;  // TPM_ST_ATTEST_CERTIFY
  expect_refused(verify(make(nonce_, certify), options_), "quote.type");
}

TEST_P(EvidenceTest, WhoseEventLogDoesNotReplayIsRefused) {
  EventLogBuilder other;
  other.add(0, ev::kSCrtmVersion, "firmware 1.0");
  other.add(7, ev::kEfiVariableDriverConfig, "SecureBoot=0");  // tampered
  other.add(4, ev::kEfiBootServicesApplication, "shimx64.efi");
  for (uint32_t pcr : {0u, 4u, 7u}) other.add(pcr, ev::kSeparator, std::string(4, '\0'));
  evidence_.event_log = other.bytes();
  expect_refused(verify(evidence_, options_), "eventlog.replay", "sha256:7");
}

TEST_P(EvidenceTest, WithANonRestrictedAkIsRefused) {
  evidence_.ak_public = tpm_public(ak_.get(), kAkAttributes & ~TPMA_OBJECT_RESTRICTED);
  expect_refused(verify(evidence_, options_), "ak.attributes", "restricted not set");
}

TEST_P(EvidenceTest, FromAnotherAkThanTheEnrolledOneIsRefused) {
  auto other = ec_key();
  options_.enrolled_ak_public = tpm_public(other.get(), kAkAttributes);
  expect_refused(verify(evidence_, options_), "ak.enrolled");
}

TEST_P(EvidenceTest, IsCheckedAgainstTheReferencePolicy) {
  ReferencePolicy p;
  p.required_pcrs[alg::kSha256] = {0, 4, 7};
  p.pcrs[alg::kSha256][7] = {pcrs_[7]};
  p.applications = {ApplicationRule{"\\EFI\\BOOT\\BOOTX64.EFI", {{alg::kSha256, {app_[1]}}}}};
  p.variables = {VariableRule{kEfiGlobalVariable, "SecureBoot", 7, {Bytes{1}}, {}}};
  options_.policy = p;
  auto r = verify(evidence_, options_);
  EXPECT_TRUE(r.ok) << r.failures();
  ASSERT_NE(r.find("policy.pcr[7]"), nullptr);
  ASSERT_NE(r.find("policy.applications"), nullptr);
  ASSERT_NE(r.find("policy.variable[SecureBoot]"), nullptr);

  p.pcrs[alg::kSha256][7] = {Bytes(32, 1)};
  p.applications = {ApplicationRule{std::nullopt, {{alg::kSha256, {Bytes(32, 2)}}}}};
  p.variables = {VariableRule{kEfiGlobalVariable, "SecureBoot", std::nullopt, {Bytes{0}}, {}}};
  p.required_pcrs[alg::kSha256].insert(14);
  p.require_ima_log = true;
  options_.policy = p;
  r = verify(evidence_, options_);
  expect_refused(r, "policy.pcr[7]", "not allowed");
  expect_refused(r, "policy.applications", "not an allowed application");
  expect_refused(r, "policy.variable[SecureBoot]", "not allowed");
  expect_refused(r, "policy.required_pcrs", "sha256:14");
  expect_refused(r, "policy.ima_log");
  // No early exit: the quote checks are all still there and passed.
  EXPECT_TRUE(r.find("quote.signature")->passed);
  EXPECT_TRUE(r.find("eventlog.replay")->passed);
}

TEST_P(EvidenceTest, WithGarbageStructuresIsRefusedWithoutCrashing) {
  evidence_.ak_public = {0, 3, 1, 2, 3};
  evidence_.quote_message = {0xff, 0x54};
  auto r = verify(evidence_, options_);
  expect_refused(r, "ak.public");
  expect_refused(r, "quote.format");
  EXPECT_EQ(r.find("quote.nonce"), nullptr);  // meaningless without a parsed quote
}

INSTANTIATE_TEST_SUITE_P(RsaAndEcc, EvidenceTest, ::testing::Values("rsa", "ecc"));

}  // namespace

namespace {

// The fuzz seed evidence (tests/fuzz/fuzz_write_seeds) goes through the JSON codec and verifies.
TEST(TheSeedEvidence, DecodesAndVerifies) {
  auto text = read_text_file(std::filesystem::path(MCIMD_SOURCE_DIR) / "tests/fuzz/corpus/evidence/evidence.json");
  ASSERT_TRUE(text) << text.error().describe();
  auto ev = protocol::evidence_from_json(*text);
  ASSERT_TRUE(ev) << ev.error().describe();
  VerifierOptions o;
  o.nonce = ev->nonce;
  auto r = verify(*ev, o);
  EXPECT_TRUE(r.ok) << r.failures();
  EXPECT_TRUE(r.find("eventlog.replay") && r.find("eventlog.replay")->passed);
}

}  // namespace

namespace {

// An AK under the SRK gets resetCount and restartCount offset by a per-key constant mod 2^32
// (TPM 2.0 Part 3 §18.1), so the counters it reports can wrap: that must never lock it out.
TEST(TheClockCheck, AcceptsCountersThatWrapAtTwoToThe32) {
  constexpr uint32_t kTop = 0xFFFFFFFFu;
  // resetCount wraps: a TPM Reset after the last quote.
  EXPECT_TRUE(check_clock(ClockInfo{10, 0, 77, true}, ClockInfo{5000, kTop, 3, true}));
  EXPECT_TRUE(check_clock(ClockInfo{10, 2, 0, true}, ClockInfo{5000, kTop - 1, 9, true}));
  // restartCount wraps within one reset cycle.
  EXPECT_TRUE(check_clock(ClockInfo{100, 7, 0, true}, ClockInfo{90, 7, kTop, true}));
  // And the same quote seen again, or one from before the wrap, is still stale.
  auto same = check_clock(ClockInfo{10, 0, 77, true}, ClockInfo{10, 0, 77, true});
  ASSERT_FALSE(same);
  EXPECT_NE(same.error().message.find("replayed or stale evidence"), std::string::npos);
  EXPECT_FALSE(check_clock(ClockInfo{5000, kTop, 3, true}, ClockInfo{10, 0, 77, true}));
  EXPECT_FALSE(check_clock(ClockInfo{90, 7, kTop, true}, ClockInfo{100, 7, 0, true}));
}

TEST(TheClockCheck, TakesHalfTheCounterSpaceOrMoreAsGoingBack) {
  // RFC 1982 §3.2: a difference of 2^31 or more is "before".
  EXPECT_TRUE(check_clock(ClockInfo{1, 0x7FFFFFFFu, 0, true}, ClockInfo{9, 0, 0, true}));
  EXPECT_FALSE(check_clock(ClockInfo{1, 0x80000000u, 0, true}, ClockInfo{9, 0, 0, true}));
  EXPECT_FALSE(check_clock(ClockInfo{1, 0x80000005u, 0, true}, ClockInfo{9, 5, 0, true}));
  // Within a reset cycle and restart, only the clock decides.
  EXPECT_TRUE(check_clock(ClockInfo{10, 3, 4, true}, ClockInfo{9, 3, 4, true}));
  EXPECT_FALSE(check_clock(ClockInfo{8, 3, 4, true}, ClockInfo{9, 3, 4, true}));
}

}  // namespace
