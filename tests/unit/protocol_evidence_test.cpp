// protocol/ without a TPM: evidence and enrolment JSON (round trips, strict parsing), quote
// parsing, PCR digests, object names and the tpm2-tools PCR file, against structures recorded
// from tpm2-tools 5.4 on swtpm 0.7.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "protocol/evidence.hpp"
#include "protocol/quote.hpp"
#include "protocol/quote_domain.hpp"
#include "tests/support/temp_dir.hpp"
#include "common/file.hpp"

using namespace mcimd;
using namespace mcimd::protocol;
using json = nlohmann::json;

namespace {

Bytes unhex(std::string_view hex) {
  auto b = from_hex(hex, "test vector");
  EXPECT_TRUE(b);
  return b ? *b : Bytes{};
}

// `tpm2_createak -G ecc -g sha256 -s ecdsa` public, its name, and
// `tpm2_quote -l sha256:0,1,2+sha1:3 -q 0102 -g sha256` message and signature with all PCRs zero.
const Bytes kAkPublic = unhex(
    "00580023000b00050072000000100018000b0003001000202dddf8733bab11ce5a52ea29af7187b0c1b78c20473bba2566fabfc4d694b3a1"
    "00206077432d76e84db300188d73b765f1ef88bebc5f78b703701058e0b5330f888a");
const Bytes kAkName = unhex("000b45a796840e7001be43feb986e65b1cb70ce320b9f3383da9cf7c7e6e34a12da6");
const Bytes kQuoteMessage = unhex(
    "ff54434780180022000b4d63630a603b3bbd6526eca06342686ec5b1e4af3b02605226914f88a9f76b200002010200000000000004330000"
    "00010000000001201910230016363600000002000b0307000000040308000000205b517952cbe9c4c147bc3f3434f9d82409e76d09ea5890"
    "5aefe7fb5415912d9a");
const Bytes kQuoteSignature = unhex(
    "0018000b0020570e7b5df1d8c475f2bbd7ee0d4132c132f5b9916f23a86e5e0b43b02d1d19a60020cb2b8b8d63739b48a9f39618b2e9f399"
    "19488286d731b11db74330812f7202b2");
// `tpm2_createek -G ecc -u` on the same swtpm.
const Bytes kEkPublic = unhex(
    "007a0023000b000300b20020837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa000600800043001000030010"
    "002083800b6b54f48a1b51418bc8993157a42944117616fc64d6029af38ad972631f0020e5d94edc068bfad3d4140d8fa15d3288b8b047f5"
    "da5c8137ca753d8b12a53052");

Evidence sample() {
  Evidence e;
  e.nonce = {0x01, 0x02};
  e.quote_message = kQuoteMessage;
  e.quote_signature = kQuoteSignature;
  e.pcrs = {PcrBank{"sha256", {{0, Bytes(32, 0)}, {1, Bytes(32, 0)}, {2, Bytes(32, 0)}}},
            PcrBank{"sha1", {{3, Bytes(20, 0)}}}};
  e.ak_public = kAkPublic;
  return e;
}

json sample_json() { return json::parse(to_json(sample())); }

// Parses `j` and expects InvalidArgument whose message mentions `needle`.
void expect_refused(const json& j, const std::string& needle) {
  auto r = evidence_from_json(j.dump());
  ASSERT_FALSE(r) << "accepted: " << j.dump();
  EXPECT_EQ(r.error().code, Code::InvalidArgument);
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

}  // namespace

// --- quote structures ---------------------------------------------------------------------------
TEST(AQuoteMessage, ParsesAsTpm2ToolsPrintedIt) {
  auto info = parse_quote_message(kQuoteMessage);
  ASSERT_TRUE(info) << info.error().describe();
  EXPECT_EQ(info->nonce, (Bytes{0x01, 0x02}));
  ASSERT_EQ(info->selection.size(), 2u);
  EXPECT_EQ(info->selection[0], (QuotedBank{"sha256", {0, 1, 2}}));
  EXPECT_EQ(info->selection[1], (QuotedBank{"sha1", {3}}));
  EXPECT_EQ(to_hex(info->pcr_digest), "5b517952cbe9c4c147bc3f3434f9d82409e76d09ea58905aefe7fb5415912d9a");
  EXPECT_TRUE(info->safe);
}

TEST(AQuoteMessage, DigestOfTheReportedValuesMatchesTheQuotedOne) {
  auto info = parse_quote_message(kQuoteMessage);
  ASSERT_TRUE(info);
  auto hash = signature_hash(kQuoteSignature);
  ASSERT_TRUE(hash);
  EXPECT_EQ(*hash, "sha256");
  auto e = sample();
  EXPECT_EQ(*pcr_digest(info->selection, e.pcrs, *hash), info->pcr_digest);
  e.pcrs[1].values[3][0] = 1;
  EXPECT_NE(*pcr_digest(info->selection, e.pcrs, *hash), info->pcr_digest);
  e.pcrs.pop_back();
  auto missing = pcr_digest(info->selection, e.pcrs, *hash);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("sha1:3"), std::string::npos);
}

TEST(AQuoteMessage, IsRefusedWhenTruncatedOrNotFromATpm) {
  EXPECT_FALSE(parse_quote_message(Bytes(kQuoteMessage.begin(), kQuoteMessage.end() - 1)));
  auto forged = kQuoteMessage;
  forged[0] = 0xfe;
  auto r = parse_quote_message(forged);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("TPM_GENERATED_VALUE"), std::string::npos);
}

TEST(AnObjectName, IsNameAlgAndTheDigestOfThePublicArea) {
  auto name = object_name(kAkPublic);
  ASSERT_TRUE(name) << name.error().describe();
  EXPECT_EQ(to_hex(*name), to_hex(kAkName));
  EXPECT_FALSE(object_name(Bytes{0x00, 0x01, 0x02}));
}

// --- tpm2-tools export ------------------------------------------------------------------------------
TEST(ATpm2ToolsTrio, HasThePcrFileTpm2QuoteWrote) {
  auto trio = to_tpm2_tools(sample());
  ASSERT_TRUE(trio) << trio.error().describe();
  EXPECT_EQ(trio->message, kQuoteMessage);
  EXPECT_EQ(trio->signature, kQuoteSignature);
  // tpm2_quote -o for this quote: 668 bytes, zero but for these (all PCRs were zero).
  Bytes expected(668, 0);
  for (auto [at, value] : std::initializer_list<std::pair<std::size_t, uint8_t>>{
           {0, 2}, {4, 0x0b}, {6, 3}, {7, 7}, {12, 4}, {14, 3}, {15, 8},  // TPML_PCR_SELECTION
           {132, 1},                                                        // one TPML_DIGEST
           {136, 4}, {140, 32}, {206, 32}, {272, 32}, {338, 20}})          // 4 digests and their sizes
    expected[at] = value;
  EXPECT_EQ(to_hex(trio->pcrs), to_hex(expected));
}

TEST(ATpm2ToolsTrio, NeedsEveryQuotedValue) {
  auto e = sample();
  e.pcrs[0].values.erase(1);
  auto trio = to_tpm2_tools(e);
  ASSERT_FALSE(trio);
  EXPECT_EQ(trio.error().code, Code::InvalidArgument);
  EXPECT_NE(trio.error().message.find("sha256:1"), std::string::npos);
}

TEST(ATpm2ToolsTrio, IsWrittenAsFourFiles) {
  test::TempDir dir;
  ASSERT_TRUE(write_tpm2_tools_files(sample(), dir.path()));
  EXPECT_EQ(*read_file(dir.path() / "quote.msg"), kQuoteMessage);
  EXPECT_EQ(*read_file(dir.path() / "quote.sig"), kQuoteSignature);
  EXPECT_EQ(read_file(dir.path() / "quote.pcrs")->size(), 668u);
  EXPECT_EQ(*read_file(dir.path() / "ak.pub"), kAkPublic);
}

// --- evidence JSON ------------------------------------------------------------------------------------
TEST(EvidenceJson, SurvivesARoundTripWithAndWithoutOptionalParts) {
  auto e = sample();
  auto back = evidence_from_json(to_json(e));
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, e);
  e.ek_certificate = Bytes{0x30, 0x03, 0x02, 0x01, 0x00};
  e.event_log = Bytes{0x00, 0xff, 0x10};
  e.ima_log = std::string("10 ab ima-ng sha256:00 /tmp/\xff\xfe\n");  // file names need not be UTF-8
  e.nonce.clear();
  back = evidence_from_json(to_json(e));
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, e);
}

TEST(EvidenceJson, UsesTheDocumentedFieldNames) {
  auto j = sample_json();
  EXPECT_EQ(j["format"], "mcimd-evidence-1");
  EXPECT_EQ(j["nonce"], "AQI");
  EXPECT_EQ(j["pcrs"][1]["bank"], "sha1");
  EXPECT_TRUE(j["pcrs"][1]["values"].contains("3"));
  EXPECT_FALSE(j.contains("ek_certificate"));
}

TEST(EvidenceJson, RefusesUnknownMissingAndMistypedFields) {
  auto j = sample_json();
  j["extra"] = 1;
  expect_refused(j, "evidence.extra");
  j = sample_json();
  j.erase("quote_signature");
  expect_refused(j, "evidence.quote_signature");
  j = sample_json();
  j["nonce"] = 5;
  expect_refused(j, "evidence.nonce");
  j = sample_json();
  j["ak_public"] = "!!not base64!!";
  expect_refused(j, "evidence.ak_public");
  j = sample_json();
  j["format"] = "mcimd-evidence-2";
  expect_refused(j, "evidence.format");
  j = sample_json();
  j["pcrs"][0]["colour"] = "blue";
  expect_refused(j, "evidence.pcrs[0].colour");
  j = sample_json();
  j["ek_certificate"] = json::array();
  expect_refused(j, "evidence.ek_certificate");
  expect_refused(json::array(), "evidence");
}

TEST(EvidenceJson, RefusesOversizedMembers) {
  auto j = sample_json();
  j["nonce"] = base64url_encode(Bytes(65, 1));
  expect_refused(j, "evidence.nonce");
  j = sample_json();
  j["quote_message"] = base64url_encode(Bytes(kMaxTpmStructureSize + 1, 1));
  expect_refused(j, "evidence.quote_message");
  j = sample_json();
  j["ek_certificate"] = base64url_encode(Bytes(kMaxEkCertificateSize + 1, 1));
  expect_refused(j, "evidence.ek_certificate");
}

TEST(EvidenceJson, RefusesBadPcrBanks) {
  auto j = sample_json();
  j["pcrs"][0]["bank"] = "md5";
  expect_refused(j, "evidence.pcrs[0].bank");
  j = sample_json();
  j["pcrs"][1]["bank"] = "sha256";
  expect_refused(j, "repeats PCR bank sha256");
  j = sample_json();
  j["pcrs"][0]["values"]["24"] = base64url_encode(Bytes(32, 0));
  expect_refused(j, "'24'");
  j = sample_json();
  j["pcrs"][0]["values"]["07"] = base64url_encode(Bytes(32, 0));
  expect_refused(j, "'07'");
  j = sample_json();
  j["pcrs"][0]["values"]["5"] = base64url_encode(Bytes(20, 0));
  expect_refused(j, "evidence.pcrs[0].values.5");
  j = sample_json();
  j["pcrs"] = json::array();
  expect_refused(j, "evidence.pcrs");
  j = sample_json();
  j["pcrs"][0]["values"] = json::object();
  expect_refused(j, "evidence.pcrs[0].values");
}

TEST(EvidenceJson, RefusesTpmStructuresThatDoNotUnmarshal) {
  auto j = sample_json();
  j["ak_public"] = base64url_encode(Bytes(kAkPublic.begin(), kAkPublic.end() - 1));
  expect_refused(j, "evidence.ak_public");
  j = sample_json();
  auto longer = kQuoteSignature;
  longer.push_back(0);
  j["quote_signature"] = base64url_encode(longer);
  expect_refused(j, "evidence.quote_signature");
}

TEST(EvidenceJson, RefusesTextThatIsNoJson) {
  auto r = evidence_from_json("{\"format\": ");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::InvalidArgument);
  EXPECT_NE(r.error().message.find("not valid JSON"), std::string::npos);
  EXPECT_FALSE(evidence_from_json(""));
}

// --- enrolment ------------------------------------------------------------------------------------------
TEST(EnrolmentJson, RequestAndChallengeSurviveARoundTrip) {
  EnrolmentRequest request{kEkPublic, Bytes{0x30, 0x00}, kAkPublic};
  auto back = enrolment_request_from_json(to_json(request));
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, request);
  request.ek_certificate.reset();
  EXPECT_EQ(*enrolment_request_from_json(to_json(request)), request);

  // TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET shapes as tpm2_makecredential writes them.
  Bytes blob{0x00, 0x04, 0xde, 0xad, 0xbe, 0xef};
  Bytes secret{0x00, 0x02, 0x01, 0x02};
  CredentialChallenge challenge{blob, secret};
  auto c = credential_challenge_from_json(to_json(challenge));
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_EQ(*c, challenge);
}

TEST(EnrolmentJson, IsParsedStrictly) {
  auto j = json::parse(to_json(EnrolmentRequest{kEkPublic, std::nullopt, kAkPublic}));
  j["ak_name"] = "x";
  auto r = enrolment_request_from_json(j.dump());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("enrolment_request.ak_name"), std::string::npos);
  j.erase("ak_name");
  j["ek_public"] = base64url_encode(Bytes{0x00, 0x10, 0x01});
  r = enrolment_request_from_json(j.dump());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("enrolment_request.ek_public"), std::string::npos);

  auto c = json::parse(to_json(CredentialChallenge{Bytes{0x00, 0x01, 0x00}, Bytes{0x00, 0x01, 0x00}}));
  c.erase("encrypted_secret");
  auto rc = credential_challenge_from_json(c.dump());
  ASSERT_FALSE(rc);
  EXPECT_NE(rc.error().message.find("credential_challenge.encrypted_secret"), std::string::npos);
  c["encrypted_secret"] = base64url_encode(Bytes{0x00, 0x05, 0x01});  // size says 5, one byte follows
  rc = credential_challenge_from_json(c.dump());
  ASSERT_FALSE(rc);
  EXPECT_NE(rc.error().message.find("credential_challenge.encrypted_secret"), std::string::npos);
}

// Qualifying data: SHA-256(label ‖ NUL ‖ payload), values computed independently with Python's
// hashlib: sha256(b"mcimd/quote/<purpose>/v1\0" + bytes.fromhex("0102")).
TEST(AQuoteDomain, HashesItsLabelItsNulAndThePayload) {
  const Bytes payload = {0x01, 0x02};
  EXPECT_EQ(to_hex(qualifying_data(QuoteDomain::OperatorEvidence, payload)),
            "a9dda7d4121c9923f5d2e05684077af51f8c161757fd6ca6cf1d51daecde63ff");
  EXPECT_EQ(to_hex(qualifying_data(QuoteDomain::PlatformReport, payload)),
            "3ef134374465fdae4723bcadb5f4af666c911456b654b64206c316c5436a47a7");
  EXPECT_EQ(to_hex(qualifying_data(QuoteDomain::InstallReceipt, payload)),
            "2beae5cdcf86b370c504f44f47adf35603cf561f545b7ff30f51dfc2914bf375");
  EXPECT_EQ(to_hex(qualifying_data(QuoteDomain::DeletionReceipt, payload)),
            "71fec36dbb6919ae72b6cf6e494db2c7bd6cd1b2096a2b185cfc188f37a54311");
  EXPECT_EQ(to_hex(qualifying_data(QuoteDomain::SrkCertification, payload)),
            "fd2a249118bfa8fe67abf3a7148ac98c57da89587127acd787a0fd0eb1f42744");
  EXPECT_EQ(to_hex(qualifying_data(QuoteDomain::OperatorEvidence, Bytes{})),
            "9451ab3a74714d660d0b4da8d282e430a0f87981efa566693ddf5dd2ea485043");
  EXPECT_EQ(label(QuoteDomain::OperatorEvidence), "mcimd/quote/operator-evidence/v1");
  EXPECT_EQ(label(QuoteDomain::PlatformReport), "mcimd/quote/platform-report/v1");
  EXPECT_EQ(label(QuoteDomain::InstallReceipt), "mcimd/quote/install-receipt/v1");
  EXPECT_EQ(label(QuoteDomain::DeletionReceipt), "mcimd/quote/deletion-receipt/v1");
  EXPECT_EQ(label(QuoteDomain::SrkCertification), "mcimd/certify/srk/v1");
}

TEST(AQuoteDomain, NeverSharesAQualifyingValueWithAnother) {
  const Bytes payload(32, 0x5A);
  for (QuoteDomain a : kQuoteDomains) {
    EXPECT_EQ(qualifying_data(a, payload).size(), kQualifyingDataSize);
    EXPECT_EQ(quote_domain_from_name(short_name(a)), a);
    EXPECT_EQ(label(a).find('\0'), std::string_view::npos) << "a NUL inside a label would end it early";
    const std::string input_a = std::string(label(a)) + '\0';
    for (QuoteDomain b : kQuoteDomains) {
      if (a == b) continue;
      EXPECT_NE(qualifying_data(a, payload), qualifying_data(b, payload));
      // With the NUL, no label's hash input is a prefix of another's: b's input (label, NUL,
      // payload) never begins with a's label and NUL.
      EXPECT_FALSE((std::string(label(b)) + '\0' + "payload").starts_with(input_a))
          << label(a) << " / " << label(b);
    }
  }
  EXPECT_FALSE(quote_domain_from_name("operator-evidence"));
  EXPECT_FALSE(quote_domain_from_name(""));
}

// The semi-autonomous platform report, with and without the logs the policy needs.
TEST(APlatformReport, SurvivesAJsonRoundTripWithItsLogs) {
  PlatformReport r;
  r.nonce = Bytes(32, 7);
  r.policy_digest = Bytes(32, 9);
  r.trusted = true;
  r.checks = {{"policy.pcr[7]", true, "allowed"}};
  r.pcrs = {PcrBank{"sha256", {{7, Bytes(32, 1)}}}};
  auto plain = platform_report_from_json(to_json(r));
  ASSERT_TRUE(plain) << plain.error().describe();
  EXPECT_EQ(*plain, r);
  EXPECT_EQ(json::parse(to_json(r)).count("event_log"), 0u);
  r.event_log = Bytes{0x00, 0x01, 0xFF};
  r.ima_log = std::string("10 aa ima-ng sha256:00 /usr/bin/\xe9t\xe9\n");  // not UTF-8
  auto back = platform_report_from_json(to_json(r));
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, r);
  auto j = json::parse(to_json(r));
  j["event_log"] = 42;
  auto bad = platform_report_from_json(j.dump());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("platform_report.event_log"), std::string::npos) << bad.error().message;
  j = json::parse(to_json(r));
  j["firmware_log"] = "AA";
  EXPECT_FALSE(platform_report_from_json(j.dump()));
}
