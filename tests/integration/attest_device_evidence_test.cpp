// Device-side evidence against a private swtpm: consistency of PCR values with the quote, event
// logs, the tpm2-tools export checked by tpm2_checkquote, and the enrolment request.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "attestation/device.hpp"
#include "common/file.hpp"
#include "protocol/evidence.hpp"
#include "protocol/quote.hpp"
#include "protocol/quote_domain.hpp"
#include "attestation/jws.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/swtpm.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/tpm_fixture.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;
using namespace mcimd::tpm;
using attestation::EvidenceOptions;

namespace {

class EvidenceTest : public test::TpmContextTest {
 protected:
  void SetUp() override {
    open();
    auto ak = ctx_->create_ak();
    ASSERT_TRUE(ak) << ak.error().describe();
    ak_ = *ak;
  }

  // No log files unless a test asks for them: the host's own must not leak into the tests.
  EvidenceOptions options() {
    EvidenceOptions o;
    o.event_log_path = dir_.path() / "no-event-log";
    o.ima_log_path = dir_.path() / "no-ima-log";
    return o;
  }

  std::filesystem::path file(const std::string& name, const std::string& content) {
    auto path = dir_.path() / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  // Runs tpm2_checkquote on the exported trio; qualifying data in hex.
  test::RunResult checkquote(const protocol::Evidence& evidence, const std::string& qualifying_hex) {
    auto out = dir_.path() / "trio";
    std::filesystem::create_directories(out);
    auto written = protocol::write_tpm2_tools_files(evidence, out);
    EXPECT_TRUE(written) << written.error().describe();
    return test::run({"tpm2_checkquote", "-u", (out / "ak.pub").string(), "-m", (out / "quote.msg").string(), "-s",
                      (out / "quote.sig").string(), "-f", (out / "quote.pcrs").string(), "-g", "sha256", "-q",
                      qualifying_hex});
  }

  KeyBlob ak_;
};

const Bytes kNonce = {0x6d, 0x63, 0x69, 0x6d, 0x64, 0x2d, 0x6e, 0x6f, 0x6e, 0x63, 0x65};

}  // namespace

TEST_F(EvidenceTest, QuotesEveryAllocatedBankAndReportsExactlyTheQuotedValues) {
  ASSERT_TRUE(ctx_->pcr_extend(7, "sha256", Bytes(32, 0x77)));
  auto evidence = attestation::collect_evidence(*ctx_, ak_, kNonce, options());
  ASSERT_TRUE(evidence) << evidence.error().describe();
  EXPECT_EQ(ctx_->live_handles(), 0u);
  EXPECT_EQ(evidence->nonce, kNonce);
  EXPECT_EQ(evidence->ak_public, ak_.public_area);
  EXPECT_FALSE(evidence->event_log);
  EXPECT_FALSE(evidence->ima_log);
  EXPECT_FALSE(evidence->ek_certificate);
  ASSERT_EQ(evidence->pcrs.size(), 4u);
  for (const auto& bank : evidence->pcrs) EXPECT_EQ(bank.values.size(), 24u) << bank.bank;

  auto info = protocol::parse_quote_message(evidence->quote_message);
  ASSERT_TRUE(info);
  auto digest = protocol::pcr_digest(info->selection, evidence->pcrs, "sha256");
  ASSERT_TRUE(digest);
  EXPECT_EQ(*digest, info->pcr_digest);
  auto now = ctx_->pcr_read(PcrSelection{"sha256", {7}});
  ASSERT_TRUE(now);
  auto sha256 = std::find_if(evidence->pcrs.begin(), evidence->pcrs.end(),
                             [](const protocol::PcrBank& b) { return b.bank == "sha256"; });
  ASSERT_NE(sha256, evidence->pcrs.end());
  EXPECT_EQ(sha256->values.at(7), (*now)[0].digest);
}

TEST_F(EvidenceTest, QuotesAgainWhenAPcrMovesDuringTheQuote) {
  auto o = options();
  o.pcrs = {0, 16};
  o.banks = {"sha256"};
  unsigned calls = 0;
  o.before_quote = [&](unsigned attempt) {
    ++calls;
    if (attempt == 1) {
      ASSERT_TRUE(ctx_->pcr_extend(16, "sha256", Bytes(32, 0x16)));
    }
  };
  auto evidence = attestation::collect_evidence(*ctx_, ak_, kNonce, o);
  ASSERT_TRUE(evidence) << evidence.error().describe();
  EXPECT_EQ(calls, 2u);
  auto now = ctx_->pcr_read(PcrSelection{"sha256", {16}});
  ASSERT_TRUE(now);
  EXPECT_EQ(evidence->pcrs.at(0).values.at(16), (*now)[0].digest);
  auto info = protocol::parse_quote_message(evidence->quote_message);
  ASSERT_TRUE(info);
  EXPECT_EQ(*protocol::pcr_digest(info->selection, evidence->pcrs, "sha256"), info->pcr_digest);
}

TEST_F(EvidenceTest, GivesUpAsBusyWhenThePcrsKeepMoving) {
  auto o = options();
  o.banks = {"sha256"};
  o.max_attempts = 3;
  o.before_quote = [&](unsigned) { ASSERT_TRUE(ctx_->pcr_extend(23, "sha256", Bytes(32, 0x23))); };
  auto evidence = attestation::collect_evidence(*ctx_, ak_, kNonce, o);
  ASSERT_FALSE(evidence);
  EXPECT_EQ(evidence.error().code, Code::Busy);
  EXPECT_NE(evidence.error().message.find("kept changing"), std::string::npos) << evidence.error().message;
  EXPECT_EQ(ctx_->live_handles(), 0u);
}

TEST_F(EvidenceTest, IncludesTheLogsThatExistAndLeavesOutMissingOnes) {
  auto o = options();
  static constexpr char kLog[] = "\x00\x00\x00\x00\x03\x00\x00\x00 fake event log \xff\x01";
  const std::string event_log(kLog, sizeof kLog - 1);  // with its NULs
  o.event_log_path = file("binary_bios_measurements", event_log);
  auto evidence = attestation::collect_evidence(*ctx_, ak_, kNonce, o);
  ASSERT_TRUE(evidence) << evidence.error().describe();
  ASSERT_TRUE(evidence->event_log);
  EXPECT_EQ(std::string(evidence->event_log->begin(), evidence->event_log->end()), event_log);
  EXPECT_FALSE(evidence->ima_log);

  o.ima_log_path = file("ascii_runtime_measurements", "10 abc ima-ng sha256:00 boot_aggregate\n");
  evidence = attestation::collect_evidence(*ctx_, ak_, kNonce, o);
  ASSERT_TRUE(evidence);
  EXPECT_EQ(evidence->ima_log, "10 abc ima-ng sha256:00 boot_aggregate\n");
}

TEST_F(EvidenceTest, FailsNamingAnUnreadableOrOversizedLog) {
  auto o = options();
  o.event_log_path = dir_.path();  // a directory: read() fails
  auto unreadable = attestation::collect_evidence(*ctx_, ak_, kNonce, o);
  ASSERT_FALSE(unreadable);
  EXPECT_NE(unreadable.error().message.find(dir_.path().string()), std::string::npos) << unreadable.error().message;

  o.event_log_path = file("huge", std::string(protocol::kMaxEventLogSize + 1, 'x'));
  auto huge = attestation::collect_evidence(*ctx_, ak_, kNonce, o);
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, Code::InvalidArgument);
  EXPECT_NE(huge.error().message.find("huge"), std::string::npos) << huge.error().message;
  EXPECT_EQ(ctx_->live_handles(), 0u);
}

TEST_F(EvidenceTest, RefusesBadOptions) {
  auto o = options();
  o.banks = {"sha3_256"};
  auto unallocated = attestation::collect_evidence(*ctx_, ak_, kNonce, o);
  ASSERT_FALSE(unallocated);
  EXPECT_EQ(unallocated.error().code, Code::Unsupported) << unallocated.error().describe();
  EXPECT_NE(unallocated.error().message.find("sha3_256"), std::string::npos) << unallocated.error().describe();
  o = options();
  o.pcrs = {};
  EXPECT_EQ(attestation::collect_evidence(*ctx_, ak_, kNonce, o).error().code, Code::InvalidArgument);
  EXPECT_EQ(attestation::collect_evidence(*ctx_, ak_, Bytes(65, 1), options()).error().code, Code::InvalidArgument);
}

TEST_F(EvidenceTest, ExportsATrioTpm2CheckquoteAcceptsOnlyWithTheNoncesQualifyingData) {
  ASSERT_TRUE(ctx_->pcr_extend(0, "sha1", Bytes(20, 0x01)));
  ASSERT_TRUE(ctx_->pcr_extend(10, "sha256", Bytes(32, 0x10)));
  auto evidence = attestation::collect_evidence(*ctx_, ak_, kNonce, options());  // all 4 banks × 24 PCRs
  ASSERT_TRUE(evidence) << evidence.error().describe();
  ctx_.reset();
  EXPECT_EQ(evidence->nonce, kNonce);  // the document names the operator's nonce itself
  const std::string qualifying = to_hex(protocol::qualifying_data(protocol::QuoteDomain::OperatorEvidence, kNonce));
  auto good = checkquote(*evidence, qualifying);
  EXPECT_EQ(good.exit_code, 0) << good.err << good.out;
  // The bare nonce, or the nonce's qualifying data in another domain, is not what was quoted.
  EXPECT_NE(checkquote(*evidence, to_hex(kNonce)).exit_code, 0);
  EXPECT_NE(checkquote(*evidence, to_hex(protocol::qualifying_data(protocol::QuoteDomain::PlatformReport, kNonce)))
                .exit_code,
            0);
  // A reported value that is not the quoted one is caught too.
  auto tampered = *evidence;
  tampered.pcrs.at(0).values.at(0).at(0) ^= 1;
  EXPECT_NE(checkquote(tampered, qualifying).exit_code, 0);
}

TEST_F(EvidenceTest, WritesThePcrFileByteForByteAsTpm2QuoteDoes) {
  ASSERT_TRUE(ctx_->pcr_extend(3, "sha1", Bytes(20, 0x03)));
  ASSERT_TRUE(ctx_->pcr_extend(9, "sha256", Bytes(32, 0x09)));
  auto o = options();
  o.pcrs = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16};  // 24 values: three TPML_DIGESTs
  o.banks = {"sha256", "sha1"};
  auto evidence = attestation::collect_evidence(*ctx_, ak_, kNonce, o);
  ASSERT_TRUE(evidence) << evidence.error().describe();
  auto trio = protocol::to_tpm2_tools(*evidence);
  ASSERT_TRUE(trio) << trio.error().describe();
  EXPECT_EQ(trio->pcrs.size(), 132u + 4u + 3u * 532u);

  ctx_.reset();
  auto d = dir_.path();
  ASSERT_TRUE(write_file_atomic(d / "ak.pub", ak_.public_area));
  ASSERT_TRUE(write_file_atomic(d / "ak.priv", ak_.private_area));
  auto loaded = tools({"tpm2_load", "-C", "0x81000001", "-u", (d / "ak.pub").string(), "-r", (d / "ak.priv").string(),
                       "-c", (d / "ak.ctx").string()});
  ASSERT_EQ(loaded.exit_code, 0) << loaded.err;
  auto quoted = tools({"tpm2_quote", "-c", (d / "ak.ctx").string(), "-l",
                       "sha256:0,1,2,3,4,5,6,7,8,9,10,16+sha1:0,1,2,3,4,5,6,7,8,9,10,16", "-q", to_hex(kNonce), "-m",
                       (d / "tools.msg").string(), "-s", (d / "tools.sig").string(), "-o", (d / "tools.pcrs").string(),
                       "-g", "sha256"});
  ASSERT_EQ(quoted.exit_code, 0) << quoted.err;
  ASSERT_EQ(tools({"tpm2_flushcontext", "-t"}).exit_code, 0);
  auto theirs = read_file(d / "tools.pcrs");
  ASSERT_TRUE(theirs);
  EXPECT_EQ(to_hex(trio->pcrs), to_hex(*theirs));
  // Their quote covers the same selection and values: same PCR digest as ours.
  auto their_msg = read_file(d / "tools.msg");
  ASSERT_TRUE(their_msg);
  auto ours = protocol::parse_quote_message(evidence->quote_message);
  auto their = protocol::parse_quote_message(*their_msg);
  ASSERT_TRUE(ours && their);
  EXPECT_EQ(ours->selection, their->selection);
  EXPECT_EQ(ours->pcr_digest, their->pcr_digest);
}

TEST_F(EvidenceTest, SurvivesAJsonRoundTrip) {
  auto o = options();
  o.event_log_path = file("log", std::string("\x01\x02\x00\x03", 4));
  o.ima_log_path = file("ima", "10 x ima-ng sha256:00 /usr/bin/\xe9t\xe9\n");  // not UTF-8
  auto evidence = attestation::collect_evidence(*ctx_, ak_, kNonce, o);
  ASSERT_TRUE(evidence) << evidence.error().describe();
  auto back = protocol::evidence_from_json(protocol::to_json(*evidence));
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, *evidence);
}

TEST_F(EvidenceTest, BuildsAnEnrolmentRequestTheOperatorCanChallenge) {
  auto request = attestation::enrolment_request(*ctx_, ak_, EkType::EccP256);
  ASSERT_TRUE(request) << request.error().describe();
  EXPECT_EQ(request->ak_public, ak_.public_area);
  EXPECT_FALSE(request->ek_certificate);
  EXPECT_EQ(request->ek_public, *ctx_->ek_public(EkType::EccP256));
  auto back = protocol::enrolment_request_from_json(protocol::to_json(*request));
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, *request);
  EXPECT_EQ(ctx_->live_handles(), 0u);
}

// Semi-autonomous validation on the device: the report names what was evaluated, carries the
// logs the policy needs, and is quoted in the platform-report domain over exactly its bytes.
TEST_F(EvidenceTest, ValidatesThePlatformAndCarriesTheLogsThePolicyNeeds) {
  test::verifier::TestCa signer("operator policy signer");
  auto trust = attestation::CaBundle::from_pem(signer.pem());
  ASSERT_TRUE(trust);
  auto sign = [&](const std::string& yaml) {
    return *attestation::jws_sign(Bytes(yaml.begin(), yaml.end()), signer.key.get(), {signer.der()});
  };
  attestation::PlatformValidationOptions o{sign("require_event_log: true\n"), kNonce, options()};
  o.evidence.pcrs = {0, 7, 16};
  o.evidence.event_log_path = file("log", std::string("not a log", 9));
  o.evidence.ima_log_path = file("ima", "10 x ima-ng sha256:00 /x\n");
  auto v = attestation::validate_platform(*ctx_, ak_, *trust, o);
  ASSERT_TRUE(v) << v.error().describe();
  EXPECT_EQ(v->report.event_log, Bytes({'n', 'o', 't', ' ', 'a', ' ', 'l', 'o', 'g'}));
  EXPECT_FALSE(v->report.ima_log);  // the policy does not need it
  EXPECT_FALSE(v->report.trusted);  // that log does not parse
  auto parse = std::find_if(v->report.checks.begin(), v->report.checks.end(),
                            [](const protocol::ReportCheck& c) { return c.name == "eventlog.parse"; });
  ASSERT_NE(parse, v->report.checks.end()) << v->report_json;
  EXPECT_FALSE(parse->passed);
  EXPECT_TRUE(parse->reason.starts_with("truncated")) << parse->reason;
  EXPECT_EQ(v->report.nonce, kNonce);
  EXPECT_EQ(protocol::to_json(v->report), v->report_json);
  auto info = protocol::parse_quote_message(v->quote.message);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->nonce, protocol::qualifying_data(protocol::QuoteDomain::PlatformReport,
                                                   Bytes(v->report_json.begin(), v->report_json.end())));
  EXPECT_EQ(*protocol::pcr_digest(info->selection, v->report.pcrs, "sha256"), info->pcr_digest);

  // A policy on PCR values alone needs no log: none travels, and with readable logs (none here)
  // the platform passes.
  o.signed_policy = sign("required_pcrs:\n  sha256: [16]\n");
  o.evidence.event_log_path.clear();
  o.evidence.ima_log_path.clear();
  v = attestation::validate_platform(*ctx_, ak_, *trust, o);
  ASSERT_TRUE(v) << v.error().describe();
  EXPECT_FALSE(v->report.event_log);
  EXPECT_TRUE(v->report.trusted) << v->report_json;

  // Signed by someone the device does not trust: refused before anything is quoted.
  test::verifier::TestCa rogue("rogue");
  o.signed_policy = *attestation::jws_sign(Bytes{'{', '}'}, rogue.key.get(), {rogue.der()});
  auto refused = attestation::validate_platform(*ctx_, ak_, *trust, o);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::NotAuthorized);
  EXPECT_EQ(ctx_->live_handles(), 0u);
}

TEST(AProvisionedGatewayEnrolment, CarriesTheRsaEkCertificate) {
  test::Swtpm tpm(test::SwtpmOptions{/*provision_ek_certificates=*/true});
  auto ctx = Context::open(ContextOptions{tpm.tcti(), {}});
  ASSERT_TRUE(ctx);
  auto ak = (*ctx)->create_ak();
  ASSERT_TRUE(ak);
  auto request = attestation::enrolment_request(**ctx, *ak, EkType::Rsa2048);
  ASSERT_TRUE(request) << request.error().describe();
  ASSERT_TRUE(request->ek_certificate);
  EXPECT_EQ(request->ek_certificate, *(*ctx)->ek_certificate(EkType::Rsa2048));
  EvidenceOptions o;
  o.event_log_path.clear();
  o.ima_log_path.clear();
  o.ek_type = EkType::Rsa2048;
  o.banks = {"sha256"};
  auto evidence = attestation::collect_evidence(**ctx, *ak, kNonce, o);
  ASSERT_TRUE(evidence) << evidence.error().describe();
  EXPECT_EQ(evidence->ek_certificate, request->ek_certificate);
  // Evidence follows the EK type asked for: swtpm has no certificate for the ECC P-256 EK, so
  // the RSA one must not stand in for it.
  o.ek_type = EkType::EccP256;
  auto ecc = attestation::collect_evidence(**ctx, *ak, kNonce, o);
  ASSERT_TRUE(ecc) << ecc.error().describe();
  EXPECT_FALSE(ecc->ek_certificate);
  EXPECT_EQ((*ctx)->live_handles(), 0u);
}

