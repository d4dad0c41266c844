// protocol/provisioning without a TPM: every message round-trips through its JSON form exactly,
// RFC 3339 times are read in one form only, and each parser refuses, with InvalidArgument naming
// the field, what a hostile agent, operator or network could send.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "protocol/provisioning.hpp"
#include "tests/fuzz/provisioning_fixtures.hpp"
#include "tests/support/strict_json.hpp"

using namespace mcimd;
using namespace mcimd::protocol;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fixtures = mcimd::test::provisioning;
using namespace mcimd::test::strict_json;

namespace {

const fixtures::Device& device() {
  static const fixtures::Device d;
  return d;
}

}  // namespace

// --- timestamps -----------------------------------------------------------------------------------------------
TEST(AProvisioningTimestamp, ReadsTheOneRfc3339UtcForm) {
  auto t = parse_timestamp("2027-01-31T12:00:00Z");
  ASSERT_TRUE(t) << t.error().describe();
  EXPECT_EQ(t->time_since_epoch().count(), 1801396800);
  EXPECT_EQ(format_timestamp(*t), "2027-01-31T12:00:00Z");
  EXPECT_EQ(format_timestamp(Timestamp{}), "1970-01-01T00:00:00Z");
  auto leap = parse_timestamp("2028-02-29T23:59:59Z");
  ASSERT_TRUE(leap);
  EXPECT_EQ(format_timestamp(*leap), "2028-02-29T23:59:59Z");
}

TEST(AProvisioningTimestamp, RefusesEveryOtherForm) {
  for (const char* text : {"", "2027-01-31T12:00:00", "2027-01-31T12:00:00+00:00", "2027-01-31t12:00:00z",
                           "2027-01-31 12:00:00Z", "2027-01-31T12:00:00.5Z", "2027-1-31T12:00:00Z",
                           "+2027-01-31T12:00Z", "2027-01-31T24:00:00Z", "2027-01-31T12:60:00Z",
                           "2027-01-31T12:00:60Z", "2027-02-29T00:00:00Z", "2027-13-01T00:00:00Z",
                           "2027-00-10T00:00:00Z", "2027-04-31T00:00:00Z", "２027-01-31T12:00:00Z"}) {
    auto r = parse_timestamp(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, Code::InvalidArgument) << text;
  }
}

// --- round trips -------------------------------------------------------------------------------------------------
TEST(AProvisioningMessage, RoundTripsEveryMessageExactly) {
  const auto& d = device();
  auto session_request = fixtures::session_request(d);
  expect_round_trip(session_request, session_request_from_json);
  session_request.subscription.reset();
  expect_round_trip(session_request, session_request_from_json);
  expect_round_trip(fixtures::session(), session_from_json);
  expect_round_trip(fixtures::package_request(d), package_request_from_json);
  expect_round_trip(fixtures::package_header(d), package_header_from_json);
  expect_round_trip(fixtures::receipt_body(d), receipt_body_from_json);
  expect_round_trip(fixtures::install_receipt(d), install_receipt_from_json);
  expect_round_trip(fixtures::protocol_error(), protocol_error_from_json);
}

TEST(APackageHeader, RoundTripsEveryRuleAndSqnSettingAtItsLimits) {
  auto h = fixtures::package_header(device());
  h.rules = {false, true, std::nullopt, false};
  h.sqn = {10, (uint64_t{1} << 43) - 1, (uint64_t{1} << 48) - 1, true, (uint64_t{1} << 48) - 1};
  h.counter = UINT64_MAX;
  h.amf = {0xff, 0x0a};
  h.profile_class = "bootstrap";
  h.iccid = std::string(20, '9');
  h.imsi = "001010";
  h.operator_id = std::string(64, '~');
  h.package_id = std::string(64, '.');
  expect_round_trip(h, package_header_from_json);
  auto j = json::parse(to_json(h));
  EXPECT_TRUE(j["rules"]["locked_until"].is_null());
  EXPECT_EQ(j["amf"], "ff0a");
  EXPECT_EQ(j["algorithm"], (json{{"name", "milenage"}}));
}

TEST(APackageHeader, KeepsAnAlgorithmsOtherMembersAsParametersText) {
  auto j = json::parse(to_json(fixtures::package_header(device())));
  j["algorithm"] = {{"name", "tuak"}, {"keccak_iterations", 1}, {"res_size", 64}};
  auto parsed = package_header_from_json(j.dump());
  ASSERT_TRUE(parsed) << parsed.error().describe();
  EXPECT_EQ(parsed->algorithm, "tuak");
  ASSERT_TRUE(parsed->algorithm_parameters);
  EXPECT_EQ(json::parse(*parsed->algorithm_parameters), (json{{"keccak_iterations", 1}, {"res_size", 64}}));
  expect_round_trip(*parsed, package_header_from_json);
  EXPECT_EQ(json::parse(to_json(*parsed))["algorithm"], j["algorithm"]);
}

TEST(APackageRequest, CarriesTheEvidenceAsItsOwnDocument) {
  auto request = fixtures::package_request(device());
  auto j = json::parse(to_json(request));
  EXPECT_EQ(j["evidence"]["format"], "mcimd-evidence-1");
  auto evidence = evidence_from_json(j["evidence"].dump());
  ASSERT_TRUE(evidence) << evidence.error().describe();
  EXPECT_EQ(*evidence, request.evidence);
}

// --- refusals ------------------------------------------------------------------------------------------------------
TEST(APackageHeaderParser, RefusesEachSpoiledField) {
  const auto h = fixtures::package_header(device());
  using P = json::json_pointer;
  std::vector<Spoiler> s = {
      {"format", [](json& j) { j["format"] = "mcimd-package-2"; }, "package.format is 'mcimd-package-2'"},
      {"missing k", [](json& j) { j.erase("k"); }, "Missing field package.k"},
      {"missing k.seed", [](json& j) { j["k"].erase("seed"); }, "Missing field package.k.seed"},
      {"missing rules.locked_until", [](json& j) { j["rules"].erase("locked_until"); },
       "Missing field package.rules.locked_until"},
      {"missing algorithm name", [](json& j) { j["algorithm"] = json::object(); }, "Missing field package.algorithm.name"},
      {"unknown field", [](json& j) { j["note"] = "x"; }, "Unknown field package.note"},
      {"unknown sqn member", [](json& j) { j["sqn"]["l"] = 1; }, "Unknown field package.sqn.l"},
      {"unknown opc member", [](json& j) { j["opc"]["inner"] = "AA"; }, "Unknown field package.opc.inner"},
      {"counter a string", [](json& j) { j["counter"] = "4"; }, "package.counter must be an unsigned integer"},
      {"counter negative", [](json& j) { j["counter"] = -1; }, "package.counter must be an unsigned integer"},
      {"counter a fraction", [](json& j) { j["counter"] = 4.5; }, "package.counter must be an unsigned integer"},
      {"counter above 2^64", [](json& j) { j["counter"] = 18446744073709551616.0; },
       "package.counter must be an unsigned integer"},
      {"rules a list", [](json& j) { j["rules"] = json::array(); }, "package.rules must be a JSON object"},
      {"flag a number", [](json& j) { j["rules"]["disable_allowed"] = 1; },
       "package.rules.disable_allowed must be true or false"},
      {"flag on sqn a string", [](json& j) { j["sqn"]["require_amf_separation"] = "false"; },
       "package.sqn.require_amf_separation must be true or false"},
      {"device_nonce short", [](json& j) { j["device_nonce"] = b64(Bytes(31, 1)); },
       "package.device_nonce is 31 bytes, not 32"},
      {"device_nonce long", [](json& j) { j["device_nonce"] = b64(Bytes(33, 1)); }, "package.device_nonce is larger"},
      {"device_nonce not base64url", [](json& j) { j["device_nonce"] = "AAAA/AAA"; }, "package.device_nonce"},
      {"device upper case", [](json& j) { j["device"] = "000B" + std::string(64, 'A'); },
       "package.device must be the AK name in lower-case hex"},
      {"device not a name", [](json& j) { j["device"] = "000b" + std::string(62, 'a'); },
       "package.device is not a TPM object name"},
      {"device of an unknown nameAlg", [](json& j) { j["device"] = "0099" + std::string(64, 'a'); },
       "package.device is not a TPM object name"},
      {"srk_name short", [](json& j) { j["srk_name"] = b64(Bytes{0x00, 0x0b, 1, 2}); },
       "package.srk_name is not a TPM object name"},
      {"srk_name oversized", [](json& j) { j["srk_name"] = b64(Bytes(67, 0)); }, "package.srk_name is larger than 66"},
      {"issued with an offset", [](json& j) { j["issued"] = "2027-01-31T12:00:00+00:00"; },
       "package.issued: Not an RFC 3339 UTC time"},
      {"expires not a date", [](json& j) { j["expires"] = "2027-02-30T00:00:00Z"; },
       "package.expires: Not a valid date"},
      {"expires a number", [](json& j) { j["expires"] = 1801396800; }, "package.expires must be a string"},
      {"locked_until a number", [](json& j) { j["rules"]["locked_until"] = 0; },
       "package.rules.locked_until must be a string"},
      {"locked_until fractional", [](json& j) { j["rules"]["locked_until"] = "2027-01-31T12:00:00.000Z"; },
       "package.rules.locked_until: Not an RFC 3339"},
      {"iccid short", [](json& j) { j["iccid"] = std::string(17, '1'); }, "package.iccid must be 18-20 digits"},
      {"iccid long", [](json& j) { j["iccid"] = std::string(21, '1'); }, "package.iccid must be 18-20 digits"},
      {"iccid with a letter", [](json& j) { j["iccid"] = "89010012345678901F"; }, "package.iccid must be 18-20 digits"},
      {"imsi short", [](json& j) { j["imsi"] = "00101"; }, "package.imsi must be 6-15 digits"},
      {"imsi long", [](json& j) { j["imsi"] = std::string(16, '0'); }, "package.imsi must be 6-15 digits"},
      {"imsi a number", [](json& j) { j["imsi"] = 1010123456789; }, "package.imsi must be a string"},
      {"operator_id empty", [](json& j) { j["operator_id"] = ""; }, "package.operator_id must be 1-64 printable"},
      {"operator_id long", [](json& j) { j["operator_id"] = std::string(65, 'o'); },
       "package.operator_id must be 1-64 printable"},
      {"operator_id with a newline", [](json& j) { j["operator_id"] = "op\nINFO forged"; },
       "package.operator_id must be 1-64 printable"},
      {"operator_id not ASCII", [](json& j) { j["operator_id"] = "op\xc3\xa9rateur"; },
       "package.operator_id must be 1-64 printable"},
      {"package_id with a slash", [](json& j) { j["package_id"] = "../pkg"; },
       "package.package_id must be 1-64 characters of [A-Za-z0-9._-]"},
      {"package_id long", [](json& j) { j["package_id"] = std::string(65, 'p'); },
       "package.package_id must be 1-64 characters"},
      {"package_id empty", [](json& j) { j["package_id"] = ""; }, "package.package_id must be 1-64 characters"},
      {"class", [](json& j) { j["class"] = "roaming"; }, "package.class must be \"operational\" or \"bootstrap\""},
      {"algorithm a string", [](json& j) { j["algorithm"] = "milenage"; }, "package.algorithm must be a JSON object"},
      {"algorithm name upper case", [](json& j) { j["algorithm"]["name"] = "Milenage"; },
       "package.algorithm.name must be 1-32 characters of [a-z0-9-]"},
      {"algorithm name long", [](json& j) { j["algorithm"]["name"] = std::string(33, 'm'); },
       "package.algorithm.name must be 1-32"},
      {"algorithm name a number", [](json& j) { j["algorithm"]["name"] = 1; }, "package.algorithm.name must be a string"},
      {"algorithm parameters oversized", [](json& j) { j["algorithm"]["c1"] = std::string(4097, '0'); },
       "package.algorithm has more than 4096 bytes of parameters"},
      {"amf with 0x", [](json& j) { j["amf"] = "0x80"; }, "package.amf must be 4 hex digits"},
      {"amf short", [](json& j) { j["amf"] = "800"; }, "package.amf must be 4 hex digits"},
      {"amf long", [](json& j) { j["amf"] = "80000"; }, "package.amf must be 4 hex digits"},
      {"ind_bits zero", [](json& j) { j["sqn"]["ind_bits"] = 0; }, "package.sqn.ind_bits is below 1"},
      {"ind_bits eleven", [](json& j) { j["sqn"]["ind_bits"] = 11; }, "package.sqn.ind_bits is above 10"},
      {"delta zero", [](json& j) { j["sqn"]["delta"] = 0; }, "package.sqn.delta is below 1"},
      {"delta 2^43", [](json& j) { j["sqn"]["delta"] = uint64_t{1} << 43; }, "package.sqn.delta is above"},
      {"initial 2^48", [](json& j) { j["sqn"]["initial"] = uint64_t{1} << 48; }, "package.sqn.initial is above"},
      {"age_limit 2^48", [](json& j) { j["sqn"]["age_limit"] = uint64_t{1} << 48; }, "package.sqn.age_limit is above"},
      {"empty duplicate TPM2B", [](json& j) { j["k"]["duplicate"] = b64(Bytes{0, 0}); },
       "package.k.duplicate holds an empty TPM2B"},
      {"empty seed TPM2B", [](json& j) { j["opc"]["seed"] = b64(Bytes{0, 0}); }, "package.opc.seed holds an empty TPM2B"},
      {"empty string", [](json& j) { j["k"]["public"] = ""; }, "package.k.public is empty"},
  };
  add_tpm_spoilers(s, P("/authority"), "package.authority", h.authority);
  add_tpm_spoilers(s, P("/k/public"), "package.k.public", h.k.public_area);
  add_tpm_spoilers(s, P("/k/duplicate"), "package.k.duplicate", h.k.duplicate);
  add_tpm_spoilers(s, P("/opc/seed"), "package.opc.seed", h.opc.seed);
  expect_each_refused(to_json(h), package_header_from_json, s);
}

TEST(APackageHeaderParser, RefusesWhatIsNotOneJsonObjectOfBoundedSize) {
  const std::string valid = to_json(fixtures::package_header(device()));
  struct Case {
    std::string text, needle;
  };
  std::string repeated = valid;
  repeated.insert(1, "\"counter\":1,");
  std::string repeated_inner = valid;
  repeated_inner.insert(repeated_inner.find("\"ind_bits\""), "\"delta\":1,");
  const Case cases[] = {
      {"", "not valid JSON"},
      {"{", "not valid JSON"},
      {valid + "x", "not valid JSON"},
      {"[]", "package must be a JSON object"},
      {"\"mcimd-package-1\"", "package must be a JSON object"},
      {repeated, "names member 'counter' twice"},
      {repeated_inner, "names member 'delta' twice"},
      {valid.substr(0, valid.size() - 1) + ",\"pad\":\"" + std::string(kMaxPackageHeaderSize, 'a') + "\"}",
       "larger than 65536 bytes"},
  };
  for (const auto& c : cases) {
    auto r = package_header_from_json(c.text);
    ASSERT_FALSE(r) << c.text.substr(0, 80);
    EXPECT_EQ(r.error().code, Code::InvalidArgument);
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos) << r.error().message;
  }
}

TEST(APackageRequestParser, RefusesEachSpoiledField) {
  const auto& d = device();
  const auto m = fixtures::package_request(d);
  using P = json::json_pointer;
  const auto quote = m.evidence.quote_message;
  std::vector<Spoiler> s = {
      {"format", [](json& j) { j["format"] = "mcimd-package-request-0"; }, "package_request.format is"},
      {"missing evidence", [](json& j) { j.erase("evidence"); }, "Missing field package_request.evidence"},
      {"missing certification signature", [](json& j) { j["srk_certification"].erase("signature"); },
       "Missing field package_request.srk_certification.signature"},
      {"unknown field", [](json& j) { j["ek"] = "AA"; }, "Unknown field package_request.ek"},
      {"unknown certification member", [](json& j) { j["srk_certification"]["x"] = 1; },
       "Unknown field package_request.srk_certification.x"},
      {"unknown evidence member", [](json& j) { j["evidence"]["x"] = 1; }, "Unknown field package_request.evidence.x"},
      {"evidence missing its quote", [](json& j) { j["evidence"].erase("quote_message"); },
       "Missing field package_request.evidence.quote_message"},
      {"evidence of another format", [](json& j) { j["evidence"]["format"] = "mcimd-evidence-0"; },
       "package_request.evidence.format is"},
      {"evidence a string", [](json& j) { j["evidence"] = "{}"; }, "package_request.evidence must be a JSON object"},
      {"evidence for another nonce", [](json& j) { j["evidence"]["nonce"] = b64(Bytes(32, 0x99)); },
       "package_request.evidence.nonce is not package_request.operator_nonce"},
      {"operator_nonce short", [](json& j) { j["operator_nonce"] = b64(Bytes(16, 0x11)); },
       "package_request.operator_nonce is 16 bytes, not 32"},
      {"device_nonce missing", [](json& j) { j.erase("device_nonce"); }, "Missing field package_request.device_nonce"},
      {"counter a float", [](json& j) { j["counter"] = 3.0; }, "package_request.counter must be an unsigned integer"},
      {"session with a dot", [](json& j) { j["session"] = "s.1"; },
       "package_request.session must be 1-64 characters of [A-Za-z0-9_-]"},
      {"device with a prefix", [](json& j) { j["device"] = "0x" + j["device"].get<std::string>(); },
       "package_request.device must be the AK name in lower-case hex"},
      {"algorithms empty", [](json& j) { j["algorithms"] = json::array(); },
       "package_request.algorithms must be an array of 1-16 names"},
      {"algorithms a string", [](json& j) { j["algorithms"] = "milenage"; }, "package_request.algorithms must be an array"},
      {"algorithms too many", [](json& j) { j["algorithms"] = std::vector<std::string>(17, "a"); },
       "package_request.algorithms must be an array of 1-16 names"},
      {"algorithm repeated", [](json& j) { j["algorithms"] = json::array({"milenage", "milenage"}); },
       "package_request.algorithms[1] repeats an algorithm"},
      {"algorithm a number", [](json& j) { j["algorithms"] = json::array({1}); }, "package_request.algorithms[0] must be a string"},
      {"algorithm with a space", [](json& j) { j["algorithms"] = json::array({"mile nage"}); },
       "package_request.algorithms[0] must be 1-32 characters of [a-z0-9-]"},
      {"certification is a quote", [quote](json& j) { j["srk_certification"]["message"] = b64(quote); },
       "package_request.srk_certification.message is not a TPM-generated TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY"},
  };
  add_tpm_spoilers(s, P("/srk_public"), "package_request.srk_public", m.srk_public);
  add_tpm_spoilers(s, P("/authority"), "package_request.authority", m.authority);
  add_tpm_spoilers(s, P("/srk_certification/message"), "package_request.srk_certification.message",
                   m.srk_certification.message);
  add_tpm_spoilers(s, P("/srk_certification/signature"), "package_request.srk_certification.signature",
                   m.srk_certification.signature);
  add_tpm_spoilers(s, P("/evidence/quote_signature"), "package_request.evidence.quote_signature",
                   m.evidence.quote_signature);
  expect_each_refused(to_json(m), package_request_from_json, s);
}

TEST(ASessionMessageParser, RefusesEachSpoiledField) {
  const auto& d = device();
  expect_each_refused(
      to_json(fixtures::session_request(d)), session_request_from_json,
      {{"format", [](json& j) { j["format"] = "mcimd-provisioning-session-1"; }, "session_request.format is"},
       {"missing device", [](json& j) { j.erase("device"); }, "Missing field session_request.device"},
       {"unknown field", [](json& j) { j["imei"] = "1"; }, "Unknown field session_request.imei"},
       {"subscription a number", [](json& j) { j["subscription"] = 42; }, "session_request.subscription must be a string"},
       {"subscription null", [](json& j) { j["subscription"] = nullptr; }, "session_request.subscription must be a string"},
       {"subscription long", [](json& j) { j["subscription"] = std::string(65, 's'); },
        "session_request.subscription must be 1-64 characters of [A-Za-z0-9._-]"},
       {"subscription with a space", [](json& j) { j["subscription"] = "a b"; },
        "session_request.subscription must be 1-64"}});
  expect_each_refused(
      to_json(fixtures::session()), session_from_json,
      {{"missing nonce", [](json& j) { j.erase("nonce"); }, "Missing field session.nonce"},
       {"nonce short", [](json& j) { j["nonce"] = b64(Bytes(16, 1)); }, "session.nonce is 16 bytes, not 32"},
       {"nonce empty", [](json& j) { j["nonce"] = ""; }, "session.nonce is 0 bytes, not 32"},
       {"nonce not base64url", [](json& j) { j["nonce"] = "AA==AA"; }, "session.nonce"},
       {"expires in another zone", [](json& j) { j["expires"] = "2027-01-31T13:10:00+01:00"; },
        "session.expires: Not an RFC 3339 UTC time"},
       {"session id empty", [](json& j) { j["session"] = ""; }, "session.session must be 1-64 characters"},
       {"session id a number", [](json& j) { j["session"] = 7; }, "session.session must be a string"},
       {"unknown field", [](json& j) { j["ttl"] = 600; }, "Unknown field session.ttl"}});
}

TEST(AReceiptParser, RefusesEachSpoiledField) {
  const auto& d = device();
  expect_each_refused(
      to_json(fixtures::receipt_body(d)), receipt_body_from_json,
      {{"digest short", [](json& j) { j["package_sha256"] = b64(Bytes(31, 1)); },
        "receipt_body.package_sha256 is 31 bytes, not 32"},
       {"profile above 32 bits", [](json& j) { j["profile"] = uint64_t{1} << 32; }, "receipt_body.profile is above"},
       {"profile negative", [](json& j) { j["profile"] = -2; }, "receipt_body.profile must be an unsigned integer"},
       {"class", [](json& j) { j["class"] = "test"; }, "receipt_body.class must be"},
       {"iccid", [](json& j) { j["iccid"] = "89"; }, "receipt_body.iccid must be 18-20 digits"},
       {"missing counter", [](json& j) { j.erase("counter"); }, "Missing field receipt_body.counter"},
       {"unknown field", [](json& j) { j["imsi"] = "001"; }, "Unknown field receipt_body.imsi"}});
  const auto receipt = fixtures::install_receipt(d);
  const Bytes certify = fixtures::certify_message(d.srk_name, Bytes(32, 0));
  std::vector<Spoiler> s = {
      {"body not a receipt body", [](json& j) { j["body"] = b64(Bytes{'{', '}'}); },
       "install_receipt.body: Missing field receipt_body.format"},
      {"body not JSON", [](json& j) { j["body"] = b64(Bytes{'x'}); }, "install_receipt.body: The receipt_body document"},
      {"body oversized", [](json& j) { j["body"] = b64(Bytes(4097, ' ')); }, "install_receipt.body is larger than 4096"},
      {"quote of the wrong type", [certify](json& j) { j["quote_message"] = b64(certify); },
       "install_receipt.quote_message is not a TPM-generated TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE"},
      {"unknown field", [](json& j) { j["pcrs"] = json::array(); }, "Unknown field install_receipt.pcrs"},
  };
  add_tpm_spoilers(s, json::json_pointer("/quote_message"), "install_receipt.quote_message", receipt.quote_message);
  add_tpm_spoilers(s, json::json_pointer("/quote_signature"), "install_receipt.quote_signature",
                   receipt.quote_signature);
  expect_each_refused(to_json(receipt), install_receipt_from_json, s);
}

TEST(AnErrorMessageParser, RefusesUnknownCodesAndControlCharacters) {
  for (const char* code : {"InvalidArgument", "Replayed", "WrongDevice", "UntrustedSigner", "Internal"})
    EXPECT_TRUE(protocol_error_from_json(to_json(ProtocolError{code, "m"}))) << code;
  expect_each_refused(
      to_json(fixtures::protocol_error()), protocol_error_from_json,
      {{"unknown code", [](json& j) { j["code"] = "Teapot"; }, "error.code is not an mcimd error name"},
       {"code in lower case", [](json& j) { j["code"] = "replayed"; }, "error.code is not an mcimd error name"},
       {"message with a newline", [](json& j) { j["message"] = "no\nmcimd[1]: forged"; },
        "error.message must be at most 4096 bytes without control characters"},
       {"message with an escape", [](json& j) { j["message"] = "\x1b[2J"; }, "without control characters"},
       {"message oversized", [](json& j) { j["message"] = std::string(4097, 'm'); }, "error.message must be at most 4096"},
       {"missing message", [](json& j) { j.erase("message"); }, "Missing field error.message"},
       {"unknown field", [](json& j) { j["status"] = 400; }, "Unknown field error.status"}});
}

// The fuzz target's seeds must stay valid documents, or it explores only the parsers' first refusal.
TEST(TheProvisioningFuzzCorpus, HoldsValidDocumentsOfEachKind) {
  const std::filesystem::path dir = std::filesystem::path(MCIMD_SOURCE_DIR) / "tests/fuzz/corpus/provisioning";
  int headers = 0, requests = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto header = package_header_from_json(text);
    auto request = package_request_from_json(text);
    EXPECT_TRUE(header || request) << entry.path() << ": " << header.error().message << " / "
                                   << request.error().message;
    headers += header ? 1 : 0;
    requests += request ? 1 : 0;
  }
  EXPECT_GE(headers, 2);
  EXPECT_GE(requests, 1);
}
