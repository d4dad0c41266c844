// The operator's side of the lifecycle documents: releases and commands it signs are what devices
// verify, what devices would refuse is refused before signing, and deletion receipts are checked
// against the device's AK in their own quote domain. mcim-operator release, command,
// verify-deletion-receipt and rekey run as processes, as scripts use them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "attestation/lifecycle_check.hpp"
#include "attestation/package_check.hpp"
#include "common/file.hpp"
#include "operator/auc_store.hpp"
#include "operator/lifecycle_builder.hpp"
#include "tests/fuzz/lifecycle_fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/signed_documents.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_pki.hpp"

using namespace mcimd;
using namespace std::chrono_literals;
using mcimd::test::bundle_of;
using mcimd::test::expect_refused;
using mcimd::test::status_of;
using mcimd::test::TempDir;
using mcimd::test::TestPki;
namespace fixtures = mcimd::test::lifecycle;
namespace provisioning_fixtures = mcimd::test::provisioning;

namespace {

const std::string kBinary = MCIMD_BINARY_DIR "/operator/mcim-operator";

// Operator A's document signer as files (what mcim-operator loads) and as the devices trust it.
class OperatorLifecycle : public ::testing::Test {
 protected:
  OperatorLifecycle() {
    files_ = pki_.document_signer("operator A lifecycle").write(dir_.path(), "signer");
    // The chain file: the signer's certificate, then the intermediate CA.
    auto loaded = op::load_policy_signer({files_.key, files_.chain, {}});
    if (!loaded) throw std::runtime_error(loaded.error().describe());
    signer_ = std::move(*loaded);
    trusted_.push_back({"Operator A", bundle_of(pki_)});
    release_.issued = command_.issued = now_;
    release_.expires = command_.expires = now_ + 24h;
  }

  protocol::Timestamp now_ = mcimd::test::now();
  TempDir dir_;
  TestPki pki_{"operator A", /*intermediate=*/true};
  mcimd::test::Credential::Files files_;
  op::PolicySigner signer_;
  std::vector<attestation::OperatorTrust> trusted_;
  fixtures::Device device_;
  protocol::ReleaseAuthorisation release_ = fixtures::release(device_);
  protocol::OperatorCommand command_ = fixtures::command(device_);
};

using ASignedRelease = OperatorLifecycle;
using ASignedCommand = OperatorLifecycle;

}  // namespace

// --- sign_release / sign_command ---------------------------------------------------------------------------------
TEST_F(ASignedRelease, IsWhatTheDeviceVerifies) {
  auto jws = op::sign_release(release_, signer_);
  ASSERT_TRUE(jws) << jws.error().describe();
  auto verified = attestation::verify_release(*jws, trusted_, now_);
  ASSERT_TRUE(verified) << verified.error().describe();
  EXPECT_EQ(verified->body, release_);
  EXPECT_EQ(verified->signer_operator, "Operator A");
}

TEST_F(ASignedRelease, RefusesBeforeSigningWhatDevicesWouldRefuse) {
  auto bad_iccid = release_;
  bad_iccid.iccid = "89";
  expect_refused(status_of(op::sign_release(bad_iccid, signer_)), Code::InvalidArgument, "release.iccid");
  auto bad_device = release_;
  bad_device.device = "not-hex";
  expect_refused(status_of(op::sign_release(bad_device, signer_)), Code::InvalidArgument, "release.device");
  auto too_long = release_;
  too_long.expires = too_long.issued + attestation::kMaxLifecycleLifetime + 1s;
  expect_refused(status_of(op::sign_release(too_long, signer_)), Code::InvalidArgument, "valid for more than 30 days");
  auto backwards = release_;
  backwards.expires = backwards.issued;
  expect_refused(status_of(op::sign_release(backwards, signer_)), Code::InvalidArgument, "expires before it is issued");
  op::PolicySigner no_chain{std::move(signer_.key), {}};
  expect_refused(status_of(op::sign_release(release_, no_chain)), Code::InvalidArgument, "no certificate chain");
}

TEST_F(ASignedRelease, OfTheSubscriberNeedsNoChainAndVerifiesWithTheSubscribersKey) {
  release_.signer = protocol::ReleaseSigner::Subscriber;
  op::PolicySigner subscriber{mcimd::test::verifier::ec_key(), {}};
  auto jws = op::sign_release(release_, subscriber);
  ASSERT_TRUE(jws) << jws.error().describe();
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(subscriber.key.get(), &der);
  ASSERT_GT(len, 0);
  const Bytes spki(der, der + len);
  OPENSSL_free(der);
  auto verified = attestation::verify_subscriber_release(*jws, spki, now_);
  ASSERT_TRUE(verified) << verified.error().describe();
  EXPECT_EQ(verified->body, release_);
}

TEST_F(ASignedCommand, IsWhatTheDeviceVerifies) {
  auto jws = op::sign_command(command_, signer_);
  ASSERT_TRUE(jws) << jws.error().describe();
  auto verified = attestation::verify_command(*jws, trusted_, now_);
  ASSERT_TRUE(verified) << verified.error().describe();
  EXPECT_EQ(verified->body, command_);
  command_.operator_id = "operator\nA";
  expect_refused(status_of(op::sign_command(command_, signer_)), Code::InvalidArgument, "command.operator_id");
}

// --- verify_deletion_receipt ----------------------------------------------------------------------------------------
namespace {

class ADeletionReceipt : public ::testing::Test {
 protected:
  Result<protocol::DeletionBody> verify(const protocol::DeletionReceipt& receipt) const {
    return op::verify_deletion_receipt(receipt, device_.ak_public, expected_);
  }

  fixtures::Device device_;
  protocol::DeletionBody body_ = fixtures::deletion_body(device_);
  op::ExpectedDeletion expected_{device_.id, fixtures::kIccid, "Operator A"};
};

}  // namespace

TEST_F(ADeletionReceipt, QuotedByTheDevicesAkIsVerified) {
  auto r = verify(fixtures::deletion_receipt(device_, body_));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(*r, body_);
}

TEST_F(ADeletionReceipt, QuotedInTheInstallReceiptDomainIsSignatureInvalid) {
  auto receipt = provisioning_fixtures::quoted_receipt<protocol::DeletionReceipt>(
      device_, protocol::to_json(body_), protocol::QuoteDomain::InstallReceipt);
  expect_refused(status_of(verify(receipt)), Code::SignatureInvalid,
                 "the quote was not made over this receipt body in the deletion-receipt domain");
}

TEST_F(ADeletionReceipt, WhoseBodyChangedAfterQuotingIsSignatureInvalid) {
  auto receipt = fixtures::deletion_receipt(device_, body_);
  auto changed = body_;
  changed.nv_value += 1;
  receipt.body = protocol::to_json(changed);
  expect_refused(status_of(verify(receipt)), Code::SignatureInvalid, "not made over this receipt body");
}

TEST_F(ADeletionReceipt, QuotedByAnotherAkIsSignatureInvalid) {
  fixtures::Device other;
  expect_refused(status_of(verify(fixtures::deletion_receipt(other, body_))), Code::SignatureInvalid,
                 "does not verify with the device's AK");
}

TEST_F(ADeletionReceipt, ForAnotherDeviceIsWrongDevice) {
  fixtures::Device other;
  body_.device = other.id;
  expect_refused(status_of(verify(fixtures::deletion_receipt(device_, body_))), Code::WrongDevice,
                 "names device " + other.id);
}

TEST_F(ADeletionReceipt, ForAnotherProfileOrOperatorIsRefusedNamingTheField) {
  auto iccid = body_;
  iccid.iccid = "8901001234567890999";
  expect_refused(status_of(verify(fixtures::deletion_receipt(device_, iccid))), Code::InvalidArgument,
                 "deletion receipt: iccid is not the deleted profile's");
  auto operator_id = body_;
  operator_id.operator_id = "Operator B";
  expect_refused(status_of(verify(fixtures::deletion_receipt(device_, operator_id))), Code::InvalidArgument,
                 "deletion receipt: operator_id is not the deleted profile's");
}

TEST_F(ADeletionReceipt, NeedsAnAttestationKey) {
  expect_refused(status_of(op::verify_deletion_receipt(fixtures::deletion_receipt(device_), device_.srk_public,
                                                       expected_)),
                 Code::InvalidArgument, "attestation key refused");
}

// --- the command line ------------------------------------------------------------------------------------------------
namespace {

class TheLifecycleCommands : public OperatorLifecycle {
 protected:
  // argv for a subcommand: its valid options, each replaced by `overrides` where named there.
  std::vector<std::string> args(const std::string& subcommand, std::map<std::string, std::string> options,
                                const std::map<std::string, std::string>& overrides) const {
    options["--signer-key"] = files_.key.string();
    options["--signer-chain"] = files_.chain.string();
    options["--device"] = device_.id;
    options["--iccid"] = fixtures::kIccid;
    options["--out"] = out().string();
    for (const auto& [option, value] : overrides) options[option] = value;
    std::vector<std::string> argv{kBinary, subcommand};
    for (const auto& [option, value] : options) {
      argv.push_back(option);
      argv.push_back(value);
    }
    return argv;
  }
  std::vector<std::string> release_args(const std::map<std::string, std::string>& overrides = {}) const {
    return args("release", {{"--from", "Operator A"}, {"--to", "Operator B"}, {"--counter", "7"}}, overrides);
  }
  std::vector<std::string> command_args(const std::string& command,
                                        const std::map<std::string, std::string>& overrides = {}) const {
    return args("command", {{"--operator", "Operator A"}, {"--command", command}, {"--counter", "8"}}, overrides);
  }
  std::vector<std::string> verify_args(const std::string& device) const {
    return {kBinary, "verify-deletion-receipt", "--ak", ak_file().string(), "--receipt", receipt_file().string(),
            "--device", device, "--iccid", fixtures::kIccid, "--operator", "Operator A"};
  }

  // A signer's key that is not the key of the chain's first certificate.
  std::string key_of_other_signer() const {
    return pki_.document_signer("another signer").write(dir_.path(), "other").key.string();
  }

  std::filesystem::path out() const { return dir_.path() / "document.jws"; }
  std::filesystem::path ak_file() const { return dir_.path() / "ak.pub"; }
  std::filesystem::path receipt_file() const { return dir_.path() / "deletion-receipt.json"; }
  std::string written() const { return *read_text_file(out()); }

  void write_receipt_and_ak() const {
    ASSERT_TRUE(write_file_atomic(ak_file(), device_.ak_public));
    ASSERT_TRUE(write_file_atomic(receipt_file(), protocol::to_json(fixtures::deletion_receipt(device_))));
  }
};

}  // namespace

TEST_F(TheLifecycleCommands, ReleaseWritesAReleaseTheDeviceVerifies) {
  auto r = mcimd::test::run(release_args({{"--id", "rel-42"}, {"--expires-in", "2d"}}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("release rel-42 for device " + device_.id), std::string::npos) << r.out;
  auto verified = attestation::verify_release(written(), trusted_, mcimd::test::now());
  ASSERT_TRUE(verified) << verified.error().describe();
  EXPECT_EQ(verified->body.release_id, "rel-42");
  EXPECT_EQ(verified->body.device, device_.id);
  EXPECT_EQ(verified->body.from_operator, "Operator A");
  EXPECT_EQ(verified->body.to_operator, "Operator B");
  EXPECT_EQ(verified->body.counter, 7u);
  EXPECT_EQ(verified->body.signer, protocol::ReleaseSigner::Operator);
  EXPECT_EQ(verified->body.expires - verified->body.issued, std::chrono::days{2});
}

TEST_F(TheLifecycleCommands, ReleaseDrawsAnIdAndDefaultsToSevenDays) {
  auto r = mcimd::test::run(release_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto verified = attestation::verify_release(written(), trusted_, mcimd::test::now());
  ASSERT_TRUE(verified) << verified.error().describe();
  EXPECT_EQ(verified->body.release_id.rfind("rel-", 0), 0u) << verified->body.release_id;
  EXPECT_EQ(verified->body.expires - verified->body.issued, std::chrono::days{7});
}

TEST_F(TheLifecycleCommands, CommandWritesEachKindOfCommandTheDeviceVerifies) {
  for (const char* kind : {"enable", "disable", "delete", "fallback", "restore"}) {
    SCOPED_TRACE(kind);
    auto r = mcimd::test::run(command_args(kind));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto verified = attestation::verify_command(written(), trusted_, mcimd::test::now());
    ASSERT_TRUE(verified) << verified.error().describe();
    EXPECT_EQ(protocol::wire_name(verified->body.command), kind);
    EXPECT_EQ(verified->body.operator_id, "Operator A");
    EXPECT_EQ(verified->body.counter, 8u);
  }
}

TEST_F(TheLifecycleCommands, RefuseBadInputWithTwoNamingTheOptionOrField) {
  struct Case {
    std::vector<std::string> argv;
    std::string needle;
  };
  const Case cases[] = {
      {release_args({{"--expires-in", "31d"}}), "--expires-in"},
      {release_args({{"--expires-in", "7"}}), "--expires-in"},
      {release_args({{"--expires-in", "0h"}}), "--expires-in"},
      {release_args({{"--id", "a b"}}), "release.release_id"},
      {release_args({{"--iccid", "12"}}), "release.iccid"},
      {release_args({{"--device", "ABCD"}}), "release.device"},
      {command_args("wipe"), "--command"},
      {command_args("disable", {{"--signer-key", (dir_.path() / "missing.key").string()}}), "--signer-key"},
      {command_args("disable", {{"--signer-chain", files_.key.string()}}), "--signer-cert"},
      {command_args("disable", {{"--signer-chain", files_.cert.string()}, {"--signer-key", key_of_other_signer()}}),
       "--signer-cert"},
  };
  for (const auto& c : cases) {
    auto r = mcimd::test::run(c.argv);
    EXPECT_EQ(r.exit_code, 2) << c.needle << ": " << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out())) << c.needle;
  }
}

TEST_F(TheLifecycleCommands, VerifyDeletionReceiptPrintsTheVerifiedBody) {
  write_receipt_and_ak();
  auto r = mcimd::test::run(verify_args(device_.id));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "device: " + device_.id + "\niccid: " + fixtures::kIccid +
                       "\noperator: Operator A\nprofile: 2\nreason: change-of-subscription\nnv_index: 0x01500020"
                       "\nnv_value: 3\n");
  auto json_argv = verify_args(device_.id);
  json_argv.push_back("--json");
  auto j = mcimd::test::run(json_argv);
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_EQ(nlohmann::json::parse(j.out), nlohmann::json::parse(protocol::to_json(fixtures::deletion_body(device_))));
}

TEST_F(TheLifecycleCommands, VerifyDeletionReceiptTakesTheAkFromAnEnrolmentRequest) {
  write_receipt_and_ak();
  protocol::EnrolmentRequest request{device_.srk_public, std::nullopt, device_.ak_public};
  ASSERT_TRUE(write_file_atomic(ak_file(), protocol::to_json(request)));
  auto r = mcimd::test::run(verify_args(device_.id));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(TheLifecycleCommands, VerifyDeletionReceiptFailsClearlyForAnotherDeviceOrAnotherAk) {
  write_receipt_and_ak();
  fixtures::Device other;
  auto r = mcimd::test::run(verify_args(other.id));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("Failed to verify the deletion receipt: WrongDevice"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_TRUE(write_file_atomic(ak_file(), other.ak_public));
  r = mcimd::test::run(verify_args(device_.id));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("SignatureInvalid"), std::string::npos) << r.err;
}

TEST_F(TheLifecycleCommands, VerifyDeletionReceiptRefusesUnreadableInputWithTwo) {
  write_receipt_and_ak();
  ASSERT_TRUE(write_file_atomic(ak_file(), std::string("not a key")));
  auto r = mcimd::test::run(verify_args(device_.id));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--ak"), std::string::npos) << r.err;
  ASSERT_TRUE(write_file_atomic(ak_file(), device_.ak_public));
  ASSERT_TRUE(write_file_atomic(receipt_file(), std::string("{}")));
  r = mcimd::test::run(verify_args(device_.id));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--receipt: Missing field deletion_receipt.format"), std::string::npos) << r.err;
}

// --- rekey ----------------------------------------------------------------------------------------------------------
namespace {

constexpr const char* kRekeyIccid = "8901001234567890123";
constexpr const char* kRekeyImsi = "001010123456789";
constexpr const char* kNewK = "0123456789abcdef0123456789abcdef";
constexpr const char* kNewOpc = "fedcba9876543210fedcba9876543210";

class TheRekeyCommand : public OperatorLifecycle {
 protected:
  TheRekeyCommand() {
    if (!write_file_atomic(request_file(), protocol::to_json(request_)))
      throw std::runtime_error("cannot write the package request");
  }

  // argv of a valid rekey, each option replaced by `overrides` where named there ("" drops it).
  std::vector<std::string> rekey_args(const std::map<std::string, std::string>& overrides = {}) const {
    std::map<std::string, std::string> options{
        {"--request", request_file().string()}, {"--iccid", kRekeyIccid},   {"--imsi", kRekeyImsi},
        {"--k", kNewK},                         {"--opc", kNewOpc},         {"--operator-id", "Operator A"},
        // The certificate file holds the signer's certificate, then the intermediate CA.
        {"--signer-key", files_.key.string()},  {"--signer-cert", files_.chain.string()}, {"--out", out().string()}};
    for (const auto& [option, value] : overrides) options[option] = value;
    std::vector<std::string> argv{kBinary, "rekey"};
    for (const auto& [option, value] : options) {
      if (value.empty()) continue;
      argv.push_back(option);
      argv.push_back(value);
    }
    return argv;
  }

  // The AuC's record of the subscription, with the keys in service before the re-key.
  void write_old_auc_record() const {
    op::AucRecord old{kRekeyIccid, kRekeyImsi, SecureBytes(16, 0x11), SecureBytes(16, 0x22)};
    ASSERT_TRUE(op::write_auc_record(auc(), old));
  }

  std::filesystem::path request_file() const { return dir_.path() / "request.json"; }
  std::filesystem::path out() const { return dir_.path() / "rekey.jws"; }
  std::filesystem::path auc() const { return dir_.path() / "auc"; }

  provisioning_fixtures::Device gateway_;
  protocol::PackageRequest request_ = provisioning_fixtures::package_request(gateway_);
};

}  // namespace

TEST_F(TheRekeyCommand, BuildsARekeyPackageTheRequestingDeviceAcceptsAndGivesTheAucTheNewKeys) {
  write_old_auc_record();
  auto r = mcimd::test::run(rekey_args({{"--package-id", "rekey-7"}, {"--auc", auc().string()}}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string line = "rekey package rekey-7 for device " + gateway_.id + ", profile " + kRekeyIccid;
  EXPECT_NE(r.out.find(line), std::string::npos) << r.out;
  EXPECT_EQ((r.out + r.err).find(kNewK), std::string::npos) << "K is never printed";
  EXPECT_EQ((r.out + r.err).find(kNewOpc), std::string::npos) << "OPc is never printed";

  auto verified = attestation::verify_package(*read_text_file(out()), trusted_, mcimd::test::now());
  ASSERT_TRUE(verified) << verified.error().describe();
  const protocol::PackageHeader& h = verified->header;
  EXPECT_TRUE(h.rekey);
  EXPECT_EQ(h.package_id, "rekey-7");
  EXPECT_EQ(h.iccid, kRekeyIccid);
  EXPECT_EQ(h.imsi, kRekeyImsi);
  EXPECT_EQ(h.counter, request_.counter + 1);
  EXPECT_EQ(h.deletion, request_.deletion) << "the deletion counter the request set aside is echoed";
  EXPECT_EQ(h.expires - h.issued, std::chrono::hours{24});
  const std::vector<Bytes> outstanding{request_.device_nonce};
  attestation::DeviceExpectations expect{gateway_.id, outstanding, request_.counter, gateway_.srk_name,
                                         gateway_.authority_name, {"milenage"}};
  EXPECT_TRUE(attestation::check_package_for_device(h, expect));

  auto record = op::read_auc_record(auc(), kRekeyIccid);
  ASSERT_TRUE(record) << record.error().describe();
  EXPECT_EQ(to_hex(record->k), kNewK);
  EXPECT_EQ(to_hex(record->opc), kNewOpc);
}

TEST_F(TheRekeyCommand, RefusesBadInputWithTwoNamingTheOption) {
  struct Case {
    std::map<std::string, std::string> overrides;
    std::string needle;
  };
  const Case cases[] = {
      {{{"--k", "0123456789abcdef0123456789abcdeg"}}, "--k"},
      {{{"--k", "0123"}}, "--k"},
      {{{"--opc", "fedcba9876543210"}}, "--opc"},
      {{{"--package-hours", "0"}}, "--package-hours"},
      {{{"--package-hours", "721"}}, "--package-hours"},
      {{{"--request", (dir_.path() / "missing.json").string()}}, "--request"},
      {{{"--request", files_.key.string()}}, "--request"},
      {{{"--iccid", "12"}}, "package.iccid"},
      {{{"--package-id", "a b"}}, "package.package_id"},
      {{{"--signer-cert", ""}}, "--signer-cert"},
  };
  for (const auto& c : cases) {
    auto r = mcimd::test::run(rekey_args(c.overrides));
    EXPECT_EQ(r.exit_code, 2) << c.needle << ": " << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out())) << c.needle;
  }
}

TEST_F(TheRekeyCommand, RefusesARequestItsOwnAkDidNotCertify) {
  request_.device_nonce[0] ^= 1;  // the SRK certification no longer covers this nonce
  ASSERT_TRUE(write_file_atomic(request_file(), protocol::to_json(request_)));
  auto r = mcimd::test::run(rekey_args());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("Failed to check the package request"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out()));
}

TEST_F(TheRekeyCommand, LeavesNoPackageWhenTheAucCannotTakeTheNewKeys) {
  auto r = mcimd::test::run(rekey_args({{"--auc", auc().string()}}));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("Failed to update the AuC record of " + std::string(kRekeyIccid) + ": NotFound"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(out())) << "no package whose keys the network would not use";

  write_old_auc_record();
  r = mcimd::test::run(rekey_args({{"--auc", auc().string()}, {"--imsi", "001019999999999"}}));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--imsi"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out()));
  EXPECT_EQ(op::read_auc_record(auc(), kRekeyIccid)->k, SecureBytes(16, 0x11));
}
