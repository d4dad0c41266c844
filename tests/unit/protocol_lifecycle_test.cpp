// protocol/lifecycle without a TPM: releases, commands and deletion receipts round-trip through
// their JSON form exactly, every enumeration value travels by its wire name, and each parser
// refuses, with InvalidArgument naming the field, what a hostile agent, operator or network
// could send.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "protocol/lifecycle.hpp"
#include "protocol/quote_domain.hpp"
#include "tests/fuzz/lifecycle_fixtures.hpp"
#include "tests/support/strict_json.hpp"

using namespace mcimd;
using namespace mcimd::protocol;
using namespace mcimd::test::strict_json;
namespace fixtures = mcimd::test::lifecycle;
namespace provisioning_fixtures = mcimd::test::provisioning;

namespace {

const fixtures::Device& device() {
  static const fixtures::Device d;
  return d;
}

}  // namespace

// --- round trips ---------------------------------------------------------------------------------------------
TEST(ALifecycleDocument, RoundTripsEveryDocumentExactly) {
  const auto& d = device();
  expect_round_trip(fixtures::release(d), release_authorisation_from_json);
  expect_round_trip(fixtures::command(d), operator_command_from_json);
  expect_round_trip(fixtures::deletion_body(d), deletion_body_from_json);
  expect_round_trip(fixtures::deletion_receipt(d), deletion_receipt_from_json);
}

TEST(ALifecycleDocument, RoundTripsEveryEnumerationValueByItsWireName) {
  const auto& d = device();
  auto release = fixtures::release(d);
  for (auto signer : {ReleaseSigner::Operator, ReleaseSigner::Subscriber}) {
    release.signer = signer;
    expect_round_trip(release, release_authorisation_from_json);
    EXPECT_EQ(json::parse(to_json(release))["signer"], wire_name(signer));
    EXPECT_EQ(release_signer_from_name(wire_name(signer)), signer);
  }
  auto command = fixtures::command(d);
  for (auto kind : {CommandKind::Enable, CommandKind::Disable, CommandKind::Delete, CommandKind::Fallback,
                    CommandKind::Restore}) {
    command.command = kind;
    expect_round_trip(command, operator_command_from_json);
    EXPECT_EQ(command_kind_from_name(wire_name(kind)), kind);
  }
  auto body = fixtures::deletion_body(d);
  for (auto reason : {DeletionReason::ChangeOfSubscription, DeletionReason::Command, DeletionReason::Local}) {
    body.reason = reason;
    expect_round_trip(body, deletion_body_from_json);
    EXPECT_EQ(deletion_reason_from_name(wire_name(reason)), reason);
  }
  EXPECT_EQ(wire_name(CommandKind::Fallback), "fallback");
  EXPECT_EQ(wire_name(DeletionReason::ChangeOfSubscription), "change-of-subscription");
  EXPECT_FALSE(command_kind_from_name("Disable"));
  EXPECT_FALSE(release_signer_from_name(""));
}

TEST(ALifecycleDocument, RoundTripsItsFieldsAtTheirLimits) {
  auto release = fixtures::release(device());
  release.release_id = std::string(64, '.');
  release.iccid = std::string(20, '9');
  release.from_operator = std::string(64, '~');
  release.to_operator = " ";
  release.counter = UINT64_MAX;
  expect_round_trip(release, release_authorisation_from_json);
  auto body = fixtures::deletion_body(device());
  body.profile = UINT32_MAX;
  body.nv_index = 0x01ffffff;
  body.nv_value = UINT64_MAX;
  expect_round_trip(body, deletion_body_from_json);
  body.nv_index = 0x01000000;
  expect_round_trip(body, deletion_body_from_json);
}

TEST(ADeletionReceipt, CarriesItsBodyAsTheExactBytesQuoted) {
  const auto receipt = fixtures::deletion_receipt(device());
  auto j = json::parse(to_json(receipt));
  EXPECT_EQ(j["format"], "mcimd-deletion-receipt-1");
  auto body = base64url_decode(j["body"].get<std::string>(), "body");
  ASSERT_TRUE(body);
  EXPECT_EQ(std::string(body->begin(), body->end()), receipt.body);
  EXPECT_EQ(json::parse(receipt.body)["format"], "mcimd-deletion-receipt-body-1");
}

// --- refusals ------------------------------------------------------------------------------------------------
TEST(AReleaseParser, RefusesEachSpoiledField) {
  expect_each_refused(
      to_json(fixtures::release(device())), release_authorisation_from_json,
      {{"format", [](json& j) { j["format"] = "mcimd-release-2"; }, "release.format is 'mcimd-release-2'"},
       {"a command's format", [](json& j) { j["format"] = "mcimd-command-1"; }, "expected 'mcimd-release-1'"},
       {"missing release_id", [](json& j) { j.erase("release_id"); }, "Missing field release.release_id"},
       {"missing signer", [](json& j) { j.erase("signer"); }, "Missing field release.signer"},
       {"missing to_operator", [](json& j) { j.erase("to_operator"); }, "Missing field release.to_operator"},
       {"unknown field", [](json& j) { j["imsi"] = "001"; }, "Unknown field release.imsi"},
       {"release_id with a slash", [](json& j) { j["release_id"] = "../r"; },
        "release.release_id must be 1-64 characters of [A-Za-z0-9._-]"},
       {"release_id long", [](json& j) { j["release_id"] = std::string(65, 'r'); }, "release.release_id must be 1-64"},
       {"release_id a number", [](json& j) { j["release_id"] = 1; }, "release.release_id must be a string"},
       {"device upper case", [](json& j) { j["device"] = "000B" + std::string(64, 'A'); },
        "release.device must be the AK name in lower-case hex"},
       {"device not a name", [](json& j) { j["device"] = "000b" + std::string(62, 'a'); },
        "release.device is not a TPM object name"},
       {"iccid short", [](json& j) { j["iccid"] = std::string(17, '1'); }, "release.iccid must be 18-20 digits"},
       {"iccid with a letter", [](json& j) { j["iccid"] = "89010012345678901F"; }, "release.iccid must be 18-20"},
       {"iccid a number", [](json& j) { j["iccid"] = 8901001234567890123u; }, "release.iccid must be a string"},
       {"from_operator empty", [](json& j) { j["from_operator"] = ""; },
        "release.from_operator must be 1-64 printable ASCII characters"},
       {"to_operator with a newline", [](json& j) { j["to_operator"] = "B\nINFO forged"; },
        "release.to_operator must be 1-64 printable"},
       {"to_operator long", [](json& j) { j["to_operator"] = std::string(65, 'o'); },
        "release.to_operator must be 1-64"},
       {"counter negative", [](json& j) { j["counter"] = -1; }, "release.counter must be an unsigned integer"},
       {"counter a string", [](json& j) { j["counter"] = "5"; }, "release.counter must be an unsigned integer"},
       {"counter a fraction", [](json& j) { j["counter"] = 5.5; }, "release.counter must be an unsigned integer"},
       {"issued with an offset", [](json& j) { j["issued"] = "2027-01-31T12:00:00+00:00"; },
        "release.issued: Not an RFC 3339 UTC time"},
       {"expires not a date", [](json& j) { j["expires"] = "2027-02-30T00:00:00Z"; },
        "release.expires: Not a valid date"},
       {"expires a number", [](json& j) { j["expires"] = 1801396800; }, "release.expires must be a string"},
       {"signer unknown", [](json& j) { j["signer"] = "agent"; },
        "release.signer must be \"operator\" or \"subscriber\""},
       {"signer upper case", [](json& j) { j["signer"] = "Operator"; }, "release.signer must be"},
       {"signer a boolean", [](json& j) { j["signer"] = true; }, "release.signer must be a string"}});
}

TEST(ACommandParser, RefusesEachSpoiledField) {
  expect_each_refused(
      to_json(fixtures::command(device())), operator_command_from_json,
      {{"format", [](json& j) { j["format"] = "mcimd-release-1"; }, "command.format is 'mcimd-release-1'"},
       {"missing command", [](json& j) { j.erase("command"); }, "Missing field command.command"},
       {"missing operator_id", [](json& j) { j.erase("operator_id"); }, "Missing field command.operator_id"},
       {"unknown field", [](json& j) { j["profile"] = 2; }, "Unknown field command.profile"},
       {"command unknown", [](json& j) { j["command"] = "wipe"; },
        "command.command must be \"enable\", \"disable\", \"delete\", \"fallback\" or \"restore\""},
       {"command an array", [](json& j) { j["command"] = json::array({"disable"}); },
        "command.command must be a string"},
       {"command_id empty", [](json& j) { j["command_id"] = ""; }, "command.command_id must be 1-64 characters"},
       {"device odd length", [](json& j) { j["device"] = j["device"].get<std::string>() + "0"; },
        "command.device must be the AK name in lower-case hex"},
       {"iccid long", [](json& j) { j["iccid"] = std::string(21, '1'); }, "command.iccid must be 18-20 digits"},
       {"operator_id not ASCII", [](json& j) { j["operator_id"] = "op\xc3\xa9rateur"; },
        "command.operator_id must be 1-64 printable"},
       {"counter above 2^64", [](json& j) { j["counter"] = 18446744073709551616.0; },
        "command.counter must be an unsigned integer"},
       {"issued fractional", [](json& j) { j["issued"] = "2027-01-31T12:00:00.5Z"; },
        "command.issued: Not an RFC 3339"}});
}

TEST(ADeletionReceiptParser, RefusesEachSpoiledField) {
  const auto& d = device();
  expect_each_refused(
      to_json(fixtures::deletion_body(d)), deletion_body_from_json,
      {{"format", [](json& j) { j["format"] = "mcimd-install-receipt-body-1"; },
        "deletion_body.format is 'mcimd-install-receipt-body-1'"},
       {"missing nv_value", [](json& j) { j.erase("nv_value"); }, "Missing field deletion_body.nv_value"},
       {"unknown field", [](json& j) { j["counter"] = 1; }, "Unknown field deletion_body.counter"},
       {"reason unknown", [](json& j) { j["reason"] = "change_of_subscription"; },
        "deletion_body.reason must be \"change-of-subscription\", \"command\" or \"local\""},
       {"profile above 32 bits", [](json& j) { j["profile"] = uint64_t{1} << 32; }, "deletion_body.profile is above"},
       {"profile negative", [](json& j) { j["profile"] = -1; }, "deletion_body.profile must be an unsigned integer"},
       {"nv_index above 32 bits", [](json& j) { j["nv_index"] = uint64_t{1} << 32; },
        "deletion_body.nv_index is above"},
       {"nv_index a persistent handle", [](json& j) { j["nv_index"] = 0x81000001u; },
        "deletion_body.nv_index is not an NV index handle"},
       {"nv_index zero", [](json& j) { j["nv_index"] = 0; }, "deletion_body.nv_index is not an NV index handle"},
       {"nv_value a string", [](json& j) { j["nv_value"] = "3"; },
        "deletion_body.nv_value must be an unsigned integer"},
       {"iccid", [](json& j) { j["iccid"] = "89"; }, "deletion_body.iccid must be 18-20 digits"},
       {"operator_id empty", [](json& j) { j["operator_id"] = ""; }, "deletion_body.operator_id must be 1-64"},
       {"device upper case", [](json& j) { j["device"] = "000B" + std::string(64, 'A'); },
        "deletion_body.device must be the AK name in lower-case hex"}});

  const auto receipt = fixtures::deletion_receipt(d);
  const Bytes certify = provisioning_fixtures::certify_message(d.srk_name, Bytes(32, 0));
  const std::string install_body = to_json(provisioning_fixtures::receipt_body(d));
  std::vector<Spoiler> s = {
      {"format", [](json& j) { j["format"] = "mcimd-install-receipt-1"; },
       "deletion_receipt.format is 'mcimd-install-receipt-1'"},
      {"body not a deletion body", [](json& j) { j["body"] = b64(Bytes{'{', '}'}); },
       "deletion_receipt.body: Missing field deletion_body.format"},
      {"body an install receipt's",
       [install_body](json& j) { j["body"] = b64(Bytes(install_body.begin(), install_body.end())); },
       "deletion_receipt.body: deletion_body.format is 'mcimd-install-receipt-body-1'"},
      {"body not JSON", [](json& j) { j["body"] = b64(Bytes{'x'}); },
       "deletion_receipt.body: The deletion_body document"},
      {"body oversized", [](json& j) { j["body"] = b64(Bytes(4097, ' ')); },
       "deletion_receipt.body is larger than 4096"},
      {"body missing", [](json& j) { j.erase("body"); }, "Missing field deletion_receipt.body"},
      {"quote of the wrong type", [certify](json& j) { j["quote_message"] = b64(certify); },
       "deletion_receipt.quote_message is not a TPM-generated TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE"},
      {"unknown field", [](json& j) { j["pcrs"] = json::array(); }, "Unknown field deletion_receipt.pcrs"},
  };
  add_tpm_spoilers(s, json::json_pointer("/quote_message"), "deletion_receipt.quote_message", receipt.quote_message);
  add_tpm_spoilers(s, json::json_pointer("/quote_signature"), "deletion_receipt.quote_signature",
                   receipt.quote_signature);
  expect_each_refused(to_json(receipt), deletion_receipt_from_json, s);
}

TEST(ALifecycleParser, RefusesWhatIsNotOneJsonObjectOfBoundedSize) {
  const std::string valid = to_json(fixtures::release(device()));
  std::string repeated = valid;
  repeated.insert(1, "\"signer\":\"subscriber\",");
  struct Case {
    std::string text, needle;
  };
  const Case cases[] = {
      {"", "not valid JSON"},
      {valid + "x", "not valid JSON"},
      {"[]", "release must be a JSON object"},
      {repeated, "names member 'signer' twice"},
      {valid.substr(0, valid.size() - 1) + ",\"pad\":\"" + std::string(kMaxLifecycleBodySize, 'a') + "\"}",
       "larger than 4096 bytes"},
  };
  for (const auto& c : cases) {
    auto r = release_authorisation_from_json(c.text);
    ASSERT_FALSE(r) << c.text.substr(0, 80);
    EXPECT_EQ(r.error().code, Code::InvalidArgument);
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos) << r.error().message;
  }
}

TEST(AQuoteDomain, GivesDeletionReceiptsTheirOwnLabel) {
  EXPECT_EQ(label(QuoteDomain::DeletionReceipt), "mcimd/quote/deletion-receipt/v1");
  EXPECT_EQ(quote_domain_from_name("deletion-receipt"), QuoteDomain::DeletionReceipt);
  const Bytes body{'{', '}'};
  EXPECT_NE(qualifying_data(QuoteDomain::DeletionReceipt, body), qualifying_data(QuoteDomain::InstallReceipt, body));
}
