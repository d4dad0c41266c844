// Profile lifecycle against the real daemon on swtpm: verifiable deletion (a copy of a deleted
// profile's objects is refused by the TPM, a restored store by the anti-rollback counter), the
// deletion records a receipt is made from, and change of subscription.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "operator/lifecycle_builder.hpp"
#include "protocol/lifecycle.hpp"
#include "protocol/pcr_policy.hpp"
#include "tests/integration/gateway_fixture.hpp"
#include "tests/support/policy_authority.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;
using namespace mcimd::test;
using nlohmann::json;

namespace {

using Block = std::array<uint8_t, 16>;

// A deletion counter advanced from outside, as a deletion's first step does (the daemon down):
// the crash point between that step and the commit after it.
RunResult advance_counter(McimdInstance& m, const nlohmann::json& nv_index) {
  char index[16];
  std::snprintf(index, sizeof index, "0x%08x", nv_index.get<uint32_t>());
  return m.tpm2({"tpm2_nvincrement", "-C", index, index});
}

// What a root user with a copy of the store can do with the TPM directly: load a profile's K
// from the copied blobs and run AES with it under the authority's signed policy for the current
// platform state, with or without the deletion binding the profile had.
class TpmUser {
 public:
  explicit TpmUser(McimdInstance& m) {
    auto ctx = tpm::Context::open(tpm::ContextOptions{m.tpm().tcti(), {}});
    if (!ctx) throw std::runtime_error(ctx.error().describe());
    ctx_ = std::move(*ctx);
    auto authority = protocol::load_policy_authority(m.authority_public());
    if (!authority) throw std::runtime_error(authority.error().message);
    auto signed_policy = protocol::signed_pcr_policy_from_json(slurp(m.sign_current_pcrs("sha256:7", "root")));
    if (!signed_policy) throw std::runtime_error(signed_policy.error().message);
    policy_ = approve(*ctx_, *authority, *signed_policy);
  }
  Result<std::vector<Block>> use_k(const std::filesystem::path& store, const json& profile) {
    auto read = [&](const std::string& name) {
      auto text = slurp(store / "objects" / name);
      return Bytes(text.begin(), text.end());
    };
    tpm::KeyBlob k{read(profile["k"]["public"]), read(profile["k"]["private"])};
    tpm::ApprovedPolicy p = policy_;
    if (!profile["deletion"].is_null())
      p.deletion = tpm::NvBinding{profile["deletion"]["nv_index"], profile["deletion"]["value"]};
    auto key = ctx_->load_aes_key(k);
    if (!key) return tl::unexpected(key.error());
    const std::vector<Block> blocks(1, Block{});
    return key->encrypt_ecb(blocks, p);
  }

 private:
  std::unique_ptr<tpm::Context> ctx_;
  tpm::ApprovedPolicy policy_;
};

class AProvisionedGateway : public AGatewayBeingProvisioned {
 protected:
  void SetUp() override {
    AGatewayBeingProvisioned::SetUp();
    auto req = request(random_nonce());
    auto r = install(build(req).jws);
    ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  }
};

}  // namespace

// TR 33.812 §5.1.3.5.7 / the deletion binding: after a delete, neither the daemon with a restored
// store nor a root user with the TPM and a copy of the blobs can use the profile again.
TEST_F(AProvisionedGateway, RefusesACopyOfADeletedProfileRestoredAfterTheDeletion) {
  expect_aka_with_set1("1", 2);
  const json before = state();
  const json p1 = profile_named(before, "p1");
  ASSERT_FALSE(p1["deletion"].is_null()) << "the provisioned profile is bound to a deletion counter";

  // The copy, taken by root while the profile lives; with it the TPM still answers (the harness
  // can succeed).
  ASSERT_EQ(mcimd.stop(), 0);
  const auto copy = mcimd.dir() / "store-copy";
  std::filesystem::copy(mcimd.store(), copy, std::filesystem::copy_options::recursive);
  {
    TpmUser root(mcimd);
    auto works = root.use_k(copy, p1);
    ASSERT_TRUE(works) << works.error().describe();
  }
  ASSERT_TRUE(mcimd.start()) << mcimd.log();

  // The deletion: the bootstrap profile back in service, the operational one deleted.
  ASSERT_EQ(mcimd.mcimctl({"enable", "0"}).exit_code, 0) << mcimd.log();
  auto deleted = mcimd.mcimctl({"delete", "1"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err << mcimd.log();
  const json after = state();
  ASSERT_EQ(after["profiles"].size(), 1u);
  ASSERT_EQ(after["deletions"].size(), 1u);
  EXPECT_EQ(after["deletions"][0]["iccid"], p1["iccid"]);
  EXPECT_EQ(after["deletions"][0]["reason"], "local");
  EXPECT_EQ(after["deletions"][0]["nv_index"], p1["deletion"]["nv_index"]);
  EXPECT_EQ(after["deletions"][0]["nv_value"], p1["deletion"]["value"].get<uint64_t>() + 1);
  ASSERT_EQ(mcimd.stop(), 0);

  // Attack 1: the TPM directly, with the copied blobs, the signed policy and the old binding.
  {
    TpmUser root(mcimd);
    auto refused = root.use_k(copy, p1);
    ASSERT_FALSE(refused) << "a copy of the deleted profile's K still works";
    EXPECT_EQ(refused.error().code, Code::NotAuthorized) << refused.error().describe();
    EXPECT_NE(refused.error().message.find("deleted"), std::string::npos) << refused.error().message;
    json unbound = p1;
    unbound["deletion"] = nullptr;
    EXPECT_FALSE(root.use_k(copy, unbound)) << "the binding is part of K's policy";
  }

  // Attack 2: the whole store as it was before the deletion, put back under the daemon.
  std::filesystem::remove_all(mcimd.store());
  std::filesystem::copy(copy, mcimd.store(), std::filesystem::copy_options::recursive);
  EXPECT_FALSE(mcimd.start()) << "mcimd served a store restored from before a deletion";
  EXPECT_NE(mcimd.log().find("RollbackDetected"), std::string::npos) << mcimd.log();
}

// A crash after the deletion counter advanced and before the store's commit: the next start
// completes the deletion (the profile is unusable from the advance on anyway).
TEST_F(AProvisionedGateway, CompletesADeletionInterruptedAfterItsCounterAdvanced) {
  const json p1 = profile_named(state(), "p1");
  ASSERT_EQ(mcimd.mcimctl({"enable", "0"}).exit_code, 0) << mcimd.log();
  ASSERT_EQ(mcimd.stop(), 0);
  // The advance, as the deletion makes it, without the commit that would follow.
  auto advanced = advance_counter(mcimd, p1["deletion"]["nv_index"]);
  ASSERT_EQ(advanced.exit_code, 0) << advanced.err;
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  auto list = json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles");
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0].value("class", ""), "bootstrap");
  const json st = state();
  ASSERT_EQ(st["deletions"].size(), 1u);
  EXPECT_EQ(st["deletions"][0]["iccid"], p1["iccid"]);
  EXPECT_NE(mcimd.log().find("completing its deletion"), std::string::npos) << mcimd.log();
}

namespace {

constexpr const char* kNewOperator = "00202";

// A second operator's PKI, and a gateway that accepts packages from both.
struct SecondPki {
  TempDir dir;
  TestPki pki{"operator 00202"};
  std::filesystem::path anchors = pki.write_root(dir.path(), "operator-00202");
};

McimdOptions two_operators(const std::filesystem::path& first, const std::filesystem::path& second) {
  McimdOptions o;
  o.extra_config = "provisioning:\n  operators:\n    - id: \"00101\"\n      anchors: " + first.string() +
                   "\n    - id: \"00202\"\n      anchors: " + second.string() + "\n";
  return o;
}

// A base of its own, so that it is made before the gateway whose configuration names it.
struct WithSecondOperator {
  SecondPki second;
};

class AGatewayChangingOperator : protected WithSecondOperator, public AGatewayBeingProvisioned {
 protected:
  AGatewayChangingOperator()
      : AGatewayBeingProvisioned([this](const PkiDir& first) { return two_operators(first.anchors, second.anchors); }) {}

  void SetUp() override {
    AGatewayBeingProvisioned::SetUp();
    new_signer = signer_from(second.pki.document_signer("operator 00202 packages"), second.dir.path(), "signer-b");
  }
  // The first operator's profile, p1, active; `locked` puts it under a subsidy lock for a year;
  // `subscriber` registers the subscriber's key (DER SubjectPublicKeyInfo) with it.
  void provision_first(bool locked = false, std::optional<Bytes> subscriber = std::nullopt) {
    auto req = request(random_nonce());
    auto sub = subscription();
    sub.subscriber_key = std::move(subscriber);
    if (locked)
      sub.rules.locked_until = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()) +
                               std::chrono::days{365};
    auto r = install(build(req, sub, order(req), signer).jws);
    ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
    device = req.device;
    ak_public = req.evidence.ak_public;
  }
  // The new operator's package for a fresh request (another ICCID, the same test keys).
  op::BuiltPackage new_operator_package(std::string id = "pkg-b-1") {
    auto req = request(random_nonce());
    auto o = order(req, std::move(id));
    o.operator_id = kNewOperator;
    return build(req, subscription("8949002000000000017"), o, new_signer);
  }
  protocol::ReleaseAuthorisation release_body(uint64_t counter = 1) {
    protocol::ReleaseAuthorisation r;
    r.release_id = "rel-" + std::to_string(counter);
    r.device = device;
    r.iccid = "8949001234567890123";
    r.from_operator = kOperator;
    r.to_operator = kNewOperator;
    r.counter = counter;
    r.issued = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    r.expires = r.issued + std::chrono::days{7};
    r.signer = protocol::ReleaseSigner::Operator;
    return r;
  }
  protocol::OperatorCommand command_body(protocol::CommandKind kind, uint64_t counter) {
    protocol::OperatorCommand c;
    c.command_id = "cmd-" + std::to_string(counter);
    c.device = device;
    c.iccid = "8949001234567890123";
    c.operator_id = kOperator;
    c.command = kind;
    c.counter = counter;
    c.issued = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    c.expires = c.issued + std::chrono::days{1};
    return c;
  }
  RunResult command(const std::string& jws) {
    std::ofstream(mcimd.dir() / "command.jws", std::ios::trunc) << jws;
    return mcimd.mcimctl({"command", (mcimd.dir() / "command.jws").string()});
  }
  std::string active_id() { return state()["active"].is_null() ? "" : state()["active"].get<std::string>(); }

  RunResult change(const std::string& release, const std::string& package) {
    std::ofstream(mcimd.dir() / "release.jws", std::ios::trunc) << release;
    std::ofstream(mcimd.dir() / "package-b.jws", std::ios::trunc) << package;
    return mcimd.mcimctl({"subscription", "change", "--release", (mcimd.dir() / "release.jws").string(),
                          (mcimd.dir() / "package-b.jws").string(), "--receipt",
                          (mcimd.dir() / "receipt-b.json").string()});
  }
  // A refused change: the named error, an audit record naming the profile, the operator and the
  // reason, and nothing changed.
  void expect_change_refused(const std::string& release, const std::string& package, const std::string& code,
                             const std::string& audited_operator, const std::string& what) {
    const std::string before = store_state();
    const std::string list_before = mcimd.mcimctl({"list"}).out;
    auto r = change(release, package);
    EXPECT_NE(r.exit_code, 0) << what << ": changed";
    EXPECT_NE(r.err.find(code), std::string::npos) << what << ": expected " << code << ", got: " << r.err;
    const std::string audit = "audit: change-of-subscription refused: profile=p1 operator=" + audited_operator +
                              " reason=" + code;
    EXPECT_NE(mcimd.log().find(audit), std::string::npos) << what << ": no audit record \"" << audit << "\"\n"
                                                          << mcimd.log();
    EXPECT_EQ(store_state(), before) << what << ": the store changed";
    EXPECT_EQ(mcimd.mcimctl({"list"}).out, list_before) << what;
  }

  op::PolicySigner new_signer;
  std::string device;
  Bytes ak_public;
};

}  // namespace

// TR 33.812 §5.1.3.5.5: the current operator releases the profile to a named new operator; the
// new profile takes over, and once it has authenticated the old one is deleted with a receipt
// the old operator verifies.
TEST_F(AGatewayChangingOperator, MovesToTheNewOperatorWithTheCurrentOperatorsRelease) {
  provision_first();
  auto package = new_operator_package();
  auto r = change(sign(release_body(), signer), package.jws);
  ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  auto receipt = protocol::install_receipt_from_json(slurp(mcimd.dir() / "receipt-b.json"));
  ASSERT_TRUE(receipt);
  auto body = op::verify_install_receipt(*receipt, ak_public,
                                         {package.header.package_id, device, package.header.counter, package.sha256,
                                          package.header.iccid});
  ASSERT_TRUE(body) << body.error().message;

  // Both kept until the new one proves itself: the old one disabled, the new one in service.
  auto list = nlohmann::json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles");
  ASSERT_EQ(list.size(), 3u) << list.dump();
  EXPECT_EQ(list[1].value("operator_id", ""), kOperator);
  EXPECT_EQ(list[1].value("state", ""), "disabled");
  EXPECT_EQ(list[2].value("operator_id", ""), kNewOperator);
  EXPECT_EQ(list[2].value("state", ""), "enabled");
  EXPECT_EQ(profile_named(state(), "p2")["replaces"], "p1");
  // One change at a time: the released profile cannot be released again meanwhile.
  auto again = change(sign(release_body(2), signer), new_operator_package("pkg-b-2").jws);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("InvalidState"), std::string::npos) << again.err;

  // The first successful authentication of the new profile deletes the old one for good.
  expect_aka_with_set1("2", 2);
  list = nlohmann::json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles");
  ASSERT_EQ(list.size(), 2u) << list.dump();
  EXPECT_EQ(list[1].value("operator_id", ""), kNewOperator);
  EXPECT_TRUE(profile_named(state(), "p2")["replaces"].is_null());

  auto receipts = mcimd.mcimctl({"deletion-receipts"});
  ASSERT_EQ(receipts.exit_code, 0) << receipts.err;
  auto deletion = protocol::deletion_receipt_from_json(receipts.out.substr(0, receipts.out.find('\n')));
  ASSERT_TRUE(deletion) << deletion.error().message << receipts.out;
  auto deleted = op::verify_deletion_receipt(*deletion, ak_public, {device, "8949001234567890123", kOperator});
  ASSERT_TRUE(deleted) << deleted.error().message;
  EXPECT_EQ(deleted->reason, protocol::DeletionReason::ChangeOfSubscription);
  EXPECT_EQ(deleted->profile, 1u);
  // The receipt is for the old operator only, and for what it says only.
  EXPECT_FALSE(op::verify_deletion_receipt(*deletion, ak_public, {device, "8949001234567890123", kNewOperator}));
  EXPECT_FALSE(op::verify_install_receipt(protocol::InstallReceipt{deletion->body, deletion->quote_message,
                                                                   deletion->quote_signature},
                                          ak_public,
                                          {package.header.package_id, device, package.header.counter, package.sha256,
                                           package.header.iccid}))
      << "a deletion receipt never passes for an install receipt";
}

TEST_F(AGatewayChangingOperator, DeletesTheReleasedProfileWhenTheAdministratorConfirmsTheNewOne) {
  provision_first();
  auto package = new_operator_package();
  ASSERT_EQ(change(sign(release_body(), signer), package.jws).exit_code, 0) << mcimd.log();
  auto confirmed = mcimd.mcimctl({"subscription", "confirm", "2"});
  ASSERT_EQ(confirmed.exit_code, 0) << confirmed.err << mcimd.log();
  auto deletion = protocol::deletion_receipt_from_json(confirmed.out);
  ASSERT_TRUE(deletion) << deletion.error().message;
  EXPECT_TRUE(op::verify_deletion_receipt(*deletion, ak_public, {device, "8949001234567890123", kOperator}));
  auto again = mcimd.mcimctl({"subscription", "confirm", "2"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("InvalidState"), std::string::npos) << again.err;
}

// Every fraudulent change the issue lists, performed: each refused with its named error and an
// audit record, nothing changed; then the genuine release still works.
TEST_F(AGatewayChangingOperator, RefusesEveryFraudulentChangeAndChangesNothing) {
  provision_first();
  auto package = new_operator_package();

  // Missing: the new operator's package installed over the first operator's profile.
  {
    const std::string before = store_state();
    auto r = install(package.jws, "takeover.jws");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("NotAuthorized"), std::string::npos) << r.err;
    EXPECT_NE(mcimd.log().find("audit: change-of-subscription refused: profile=p1 operator=00202 reason=NotAuthorized"),
              std::string::npos)
        << mcimd.log();
    EXPECT_EQ(store_state(), before);
  }
  // Missing, after a fallback to the bootstrap profile: the first operator's profile is still
  // installed, so the new operator still needs its release.
  {
    ASSERT_EQ(mcimd.mcimctl({"fallback"}).exit_code, 0) << mcimd.log();
    const std::string before = store_state();
    auto r = install(package.jws, "takeover.jws");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("NotAuthorized"), std::string::npos) << r.err;
    EXPECT_EQ(store_state(), before);
    ASSERT_EQ(mcimd.mcimctl({"enable", "1"}).exit_code, 0) << mcimd.log();
  }
  // Forged: the release changed after the operator signed it.
  {
    // The operator's signature kept, the payload swapped for one naming another new operator.
    const std::string genuine = sign(release_body(), signer);
    auto body = release_body();
    body.to_operator = "00303";
    const std::string payload = protocol::to_json(body);
    const auto first = genuine.find('.'), second = genuine.rfind('.');
    const std::string forged = genuine.substr(0, first + 1) +
                               base64url_encode(std::span(reinterpret_cast<const uint8_t*>(payload.data()), payload.size())) +
                               genuine.substr(second);
    expect_change_refused(forged, package.jws, "SignatureInvalid", kOperator, "forged release");
  }
  // Expired.
  {
    auto body = release_body();
    body.issued -= std::chrono::days{10};
    body.expires = body.issued + std::chrono::days{1};
    expect_change_refused(sign(body, signer), package.jws, "Expired", kOperator, "expired release");
  }
  // Replayed: a counter not above the last accepted (none yet: 0).
  expect_change_refused(sign(release_body(0), signer), package.jws, "Replayed", kOperator, "replayed release");
  // Signed by the new operator instead of the current one: claiming to be the current operator,
  // and in its own name.
  expect_change_refused(sign(release_body(), new_signer), package.jws, "UntrustedSigner", kOperator,
                        "release signed by the new operator for the current one");
  {
    auto body = release_body();
    body.from_operator = kNewOperator;
    expect_change_refused(sign(body, new_signer), package.jws, "NotAuthorized", kNewOperator,
                          "release signed by the new operator in its own name");
  }
  // A package from an operator the release does not name.
  {
    auto body = release_body();
    body.to_operator = "00303";
    expect_change_refused(sign(body, signer), package.jws, "NotAuthorized", kOperator,
                          "package from an operator not named in the release");
  }
  // The subscriber, with no key registered for the profile.
  {
    auto body = release_body();
    body.signer = protocol::ReleaseSigner::Subscriber;
    expect_change_refused(sign(body, new_signer), package.jws, "NotAuthorized", kOperator,
                          "release by an unregistered subscriber");
  }
  // For another device.
  {
    auto body = release_body();
    body.device = "000b" + std::string(64, 'c');
    expect_change_refused(sign(body, signer), package.jws, "WrongDevice", kOperator, "release for another device");
  }

  // The genuine release: accepted, and its counter cannot be used twice.
  auto r = change(sign(release_body(5), signer), package.jws);
  ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
}

TEST_F(AGatewayChangingOperator, RefusesToMoveASubsidyLockedProfileEvenWithARelease) {
  provision_first(/*locked=*/true);
  auto package = new_operator_package();
  expect_change_refused(sign(release_body(), signer), package.jws, "NotAuthorized", kOperator,
                        "a locked profile");
  EXPECT_NE(mcimd.log().find("subsidy lock"), std::string::npos) << mcimd.log();
}

// A crash at each step of a change of subscription leaves the old profile or the new one in
// service, never neither and never a mix: after the commit (both kept, the new one active), and
// after the old one's deletion counter advanced but before the commit that removes it.
TEST_F(AGatewayChangingOperator, SurvivesADaemonKilledAtEachStepOfTheChange) {
  provision_first();
  const nlohmann::json p1 = profile_named(state(), "p1");
  auto package = new_operator_package();
  ASSERT_EQ(change(sign(release_body(), signer), package.jws).exit_code, 0) << mcimd.log();

  // Killed right after the change's commit.
  mcimd.kill();
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  auto list = nlohmann::json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles");
  ASSERT_EQ(list.size(), 3u) << list.dump();
  EXPECT_EQ(list[2].value("state", ""), "enabled");
  EXPECT_EQ(profile_named(state(), "p2")["replaces"], "p1");

  // Killed after the old profile's deletion counter advanced, before its removal was committed
  // (the advance made here as the deletion makes it).
  mcimd.kill();
  ASSERT_EQ(advance_counter(mcimd, p1["deletion"]["nv_index"]).exit_code, 0);
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  list = nlohmann::json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles");
  ASSERT_EQ(list.size(), 2u) << list.dump();
  EXPECT_EQ(list[1].value("operator_id", ""), kNewOperator);
  EXPECT_EQ(list[1].value("state", ""), "enabled");
  const auto st = state();
  ASSERT_EQ(st["deletions"].size(), 1u);
  EXPECT_EQ(st["deletions"][0]["reason"], "change-of-subscription");
  expect_aka_with_set1("2", 2);
}

// TR 33.812 §5.1.3.5.7: the operator manages its own profile remotely with signed commands, each
// used once (counter) and only while valid (expiry); the state survives a restart.
TEST_F(AGatewayChangingOperator, AppliesTheOperatorsSignedCommandsOnceEach) {
  provision_first();
  using protocol::CommandKind;
  auto fallback = command(sign(command_body(CommandKind::Fallback, 1), signer));
  ASSERT_EQ(fallback.exit_code, 0) << fallback.err << mcimd.log();
  EXPECT_EQ(nlohmann::json::parse(fallback.out).value("active", ""), "p0");
  mcimd.kill();
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  EXPECT_EQ(active_id(), "p0") << "the fallback survives a restart";

  auto restore = command(sign(command_body(CommandKind::Restore, 2), signer));
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  EXPECT_EQ(active_id(), "p1");
  expect_aka_with_set1("1", 2);

  // The same command again, an older one, an expired one, another operator's, another device's.
  const std::string before = store_state();
  auto again = command(sign(command_body(CommandKind::Fallback, 1), signer));
  EXPECT_NE(again.err.find("Replayed"), std::string::npos) << again.err;
  auto expired_body = command_body(CommandKind::Disable, 9);
  expired_body.issued -= std::chrono::days{3};
  expired_body.expires = expired_body.issued + std::chrono::days{1};
  EXPECT_NE(command(sign(expired_body, signer)).err.find("Expired"), std::string::npos);
  auto foreign = command_body(CommandKind::Delete, 10);
  foreign.operator_id = kNewOperator;
  auto foreign_run = command(sign(foreign, new_signer));
  EXPECT_NE(foreign_run.err.find("NotAuthorized"), std::string::npos) << foreign_run.err;
  EXPECT_NE(mcimd.log().find("audit: command refused: profile=p1 operator=00202 reason=NotAuthorized"),
            std::string::npos)
      << mcimd.log();
  auto posing = command(sign(command_body(CommandKind::Delete, 11), new_signer));
  EXPECT_NE(posing.err.find("UntrustedSigner"), std::string::npos) << posing.err;
  auto elsewhere = command_body(CommandKind::Delete, 12);
  elsewhere.device = "000b" + std::string(64, 'd');
  EXPECT_NE(command(sign(elsewhere, signer)).err.find("WrongDevice"), std::string::npos);
  EXPECT_EQ(store_state(), before) << "a refused command changed the store";

  // Disable, then delete: the deletion comes with its receipt.
  ASSERT_EQ(command(sign(command_body(CommandKind::Disable, 20), signer)).exit_code, 0);
  EXPECT_EQ(active_id(), "");
  auto deleted = command(sign(command_body(CommandKind::Delete, 21), signer));
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  auto result = nlohmann::json::parse(deleted.out);
  auto receipt = protocol::deletion_receipt_from_json(result.at("deletion_receipt").dump());
  ASSERT_TRUE(receipt) << receipt.error().message;
  auto body = op::verify_deletion_receipt(*receipt, ak_public, {device, "8949001234567890123", kOperator});
  ASSERT_TRUE(body) << body.error().message;
  EXPECT_EQ(body->reason, protocol::DeletionReason::Command);
  EXPECT_EQ(nlohmann::json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles").size(), 1u);
}

// The modem stack falls back to the bootstrap profile where the rules allow it; switching back
// is explicit; a profile whose rules forbid fallback stays.
TEST_F(AGatewayChangingOperator, FallsBackAtTheModemStacksRequestWhereTheRulesAllow) {
  provision_first();
  auto r = mcimd.mcimctl({"fallback"});
  ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  EXPECT_EQ(active_id(), "p0");
  auto twice = mcimd.mcimctl({"fallback"});
  EXPECT_NE(twice.err.find("InvalidState"), std::string::npos) << twice.err;
  mcimd.kill();
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  EXPECT_EQ(active_id(), "p0");
  ASSERT_EQ(mcimd.mcimctl({"enable", "1"}).exit_code, 0) << mcimd.log();
  EXPECT_EQ(active_id(), "p1");

  // A second profile of the operator whose rules forbid fallback.
  auto req = request(random_nonce());
  auto sub = subscription("8949001234567890131");
  sub.rules.fallback_allowed = false;
  ASSERT_EQ(install(build(req, sub, order(req, "pkg-nofallback"), signer).jws).exit_code, 0) << mcimd.log();
  EXPECT_EQ(active_id(), "p2");
  auto refused = mcimd.mcimctl({"fallback"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("NotAuthorized"), std::string::npos) << refused.err;
  EXPECT_NE(mcimd.log().find("audit: fallback refused: profile=p2"), std::string::npos) << mcimd.log();
  EXPECT_EQ(active_id(), "p2");
}

TEST_F(AGatewayChangingOperator, KeepsALockedProfileInServiceAgainstTheReleaseOfAnother) {
  provision_first(/*locked=*/true);
  // A second, unlocked profile of the same operator, disabled, with the locked one back in service.
  auto req = request(random_nonce());
  ASSERT_EQ(install(build(req, subscription("8949001234567890131"), order(req, "pkg-a-2"), signer).jws).exit_code, 0)
      << mcimd.log();
  ASSERT_EQ(mcimd.mcimctl({"enable", "1"}).exit_code, 0) << mcimd.log();
  auto body = release_body();
  body.iccid = "8949001234567890131";
  const std::string before = store_state();
  auto r = change(sign(body, signer), new_operator_package().jws);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("NotAuthorized"), std::string::npos) << r.err;
  EXPECT_EQ(store_state(), before);
  EXPECT_EQ(active_id(), "p1");
}

namespace {

// Other credentials than the TS 35.208 set 1 keys the first package carries.
constexpr const char* kNewK = "00112233445566778899aabbccddeeff";
constexpr const char* kNewOpc = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

class AProfileBeingRekeyed : public AGatewayChangingOperator {
 protected:
  void SetUp() override {
    AGatewayChangingOperator::SetUp();
    provision_first();
  }
  // A re-key package of the first operator for p1: new K and OPc, same ICCID.
  RunResult rekey(const std::string& id) {
    auto req = request(random_nonce());
    auto sub = subscription();
    auto k = from_hex(kNewK, "K").value();
    auto opc = from_hex(kNewOpc, "OPc").value();
    sub.k.assign(k.begin(), k.end());
    sub.opc.assign(opc.begin(), opc.end());
    auto o = order(req, id);
    o.rekey = true;
    return install(build(req, sub, o, signer).jws);
  }
  // AKA on p1 with the given network-side keys: "res" (matching), "auts", or the error text.
  std::string aka(uint64_t seq, const std::string& k, const std::string& opc) {
    char sqn[13];
    std::snprintf(sqn, sizeof sqn, "%012llx", static_cast<unsigned long long>(seq << 5));
    auto c = make_challenge(mcimd, sqn, k, opc);
    auto r = mcimd.mcimctl({"authenticate", "1", "--rand", c.rand, "--autn", c.autn, "--json"});
    if (r.exit_code != 0) return r.err;
    auto j = nlohmann::json::parse(r.out);
    if (j.contains("auts")) return "auts";
    return j.value("res", "") == c.xres ? "res" : "wrong res";
  }
  nlohmann::json p1() { return profile_named(state(), "p1"); }
};

}  // namespace

// New credentials the network already has: their first success retires the old ones for good,
// and the SQN state carries over.
TEST_F(AProfileBeingRekeyed, RetiresTheOldCredentialsOnceTheNewOnesAuthenticate) {
  EXPECT_EQ(aka(2, kSet1K, kSet1Opc), "res");
  const nlohmann::json before = p1();
  auto r = rekey("pkg-rekey-1");
  ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  const nlohmann::json during = p1();
  ASSERT_FALSE(during["previous"].is_null()) << "the old credentials are kept until the new ones authenticate";
  EXPECT_EQ(during["previous"]["k"], before["k"]);
  EXPECT_NE(during["deletion"], before["deletion"]) << "the new credentials have a deletion counter of their own";

  EXPECT_EQ(aka(3, kNewK, kNewOpc), "res");
  EXPECT_TRUE(p1()["previous"].is_null());
  EXPECT_EQ(aka(4, kSet1K, kSet1Opc).find("MacFailure") != std::string::npos, true) << "the old K is retired";
  // The SQN state carried over: an SQN at or below the last accepted is a resynchronisation.
  EXPECT_EQ(aka(3, kNewK, kNewOpc), "auts");
  EXPECT_EQ(aka(5, kNewK, kNewOpc), "res");
}

// New credentials the network does not know: the old ones still pass, and the profile rolls back
// to them on its own.
TEST_F(AProfileBeingRekeyed, RollsBackWhenTheNewCredentialsFailAndTheOldOnesPass) {
  const nlohmann::json before = p1();
  ASSERT_EQ(rekey("pkg-rekey-1").exit_code, 0) << mcimd.log();
  EXPECT_EQ(aka(2, kSet1K, kSet1Opc), "res");
  const nlohmann::json after = p1();
  EXPECT_TRUE(after["previous"].is_null());
  EXPECT_EQ(after["k"], before["k"]);
  EXPECT_EQ(after["deletion"], before["deletion"]);
  EXPECT_NE(mcimd.log().find("rolled back to the previous credentials"), std::string::npos) << mcimd.log();
  EXPECT_NE(aka(3, kNewK, kNewOpc).find("MacFailure"), std::string::npos) << "the failed new K is retired";
  EXPECT_EQ(aka(4, kSet1K, kSet1Opc), "res");
}

// Killed at each step of a re-key: the old credentials or the new ones work, never neither.
TEST_F(AProfileBeingRekeyed, SurvivesADaemonKilledAtEachStepOfTheRekey) {
  ASSERT_EQ(rekey("pkg-rekey-1").exit_code, 0) << mcimd.log();
  mcimd.kill();  // after the re-key's commit: both kept
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  ASSERT_FALSE(p1()["previous"].is_null());

  // After the old credentials' counter advanced, before the commit that drops them.
  mcimd.kill();
  ASSERT_EQ(advance_counter(mcimd, p1()["previous"]["deletion"]["nv_index"]).exit_code, 0);
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  EXPECT_TRUE(p1()["previous"].is_null());
  EXPECT_EQ(aka(2, kNewK, kNewOpc), "res");

  // A second re-key, killed after the new credentials' counter advanced for a roll-back.
  ASSERT_EQ(mcimd.mcimctl({"enable", "1"}).exit_code, 0);
  const nlohmann::json before = p1();
  auto req = request(random_nonce());
  auto o = order(req, "pkg-rekey-2");
  o.rekey = true;
  ASSERT_EQ(install(build(req, subscription(), o, signer).jws).exit_code, 0) << mcimd.log();
  mcimd.kill();
  ASSERT_EQ(advance_counter(mcimd, p1()["deletion"]["nv_index"]).exit_code, 0);
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  EXPECT_TRUE(p1()["previous"].is_null());
  EXPECT_EQ(p1()["k"], before["k"]) << "rolled back to the credentials in service before";
  EXPECT_EQ(aka(3, kNewK, kNewOpc), "res");
}

TEST_F(AProfileBeingRekeyed, AcceptsNewCredentialsOnlyFromTheProfilesOperatorOneAtATime) {
  // Another operator's re-key of p1.
  auto req = request(random_nonce());
  auto o = order(req, "pkg-b-rekey");
  o.operator_id = kNewOperator;
  o.rekey = true;
  auto foreign = install(build(req, subscription(), o, new_signer).jws);
  EXPECT_NE(foreign.exit_code, 0);
  EXPECT_NE(foreign.err.find("NotAuthorized"), std::string::npos) << foreign.err;
  // A re-key of a profile not installed.
  auto req2 = request(random_nonce());
  auto o2 = order(req2, "pkg-rekey-ghost");
  o2.rekey = true;
  auto ghost = install(build(req2, subscription("8949001234567890999"), o2, signer).jws);
  EXPECT_NE(ghost.err.find("NotFound"), std::string::npos) << ghost.err;
  // A second re-key while the first has not authenticated.
  ASSERT_EQ(rekey("pkg-rekey-1").exit_code, 0) << mcimd.log();
  auto second = rekey("pkg-rekey-2");
  EXPECT_NE(second.err.find("InvalidState"), std::string::npos) << second.err;
}

namespace {

attestation::EvpPkey p256_key() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (!key) throw std::runtime_error("EVP_EC_gen");
  return attestation::EvpPkey(key);
}

Bytes spki_of(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) throw std::runtime_error("i2d_PUBKEY");
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

}  // namespace

// Where the profile's package registered the subscriber's key, the subscriber's own release
// moves it; a release signed with another key does not.
TEST_F(AGatewayChangingOperator, MovesWithTheSubscribersReleaseWhereThePackageRegisteredTheirKey) {
  const auto subscriber = p256_key();
  provision_first(/*locked=*/false, spki_of(subscriber.get()));
  auto package = new_operator_package();
  auto body = release_body();
  body.signer = protocol::ReleaseSigner::Subscriber;
  auto sign_with = [&](EVP_PKEY* key) {
    const std::string payload = protocol::to_json(body);
    auto jws = attestation::jws_sign({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}, key);
    if (!jws) throw std::runtime_error(jws.error().message);
    return *jws;
  };
  const auto stranger = p256_key();
  expect_change_refused(sign_with(stranger.get()), package.jws, "SignatureInvalid", kOperator,
                        "a subscriber release signed with another key");
  auto r = change(sign_with(subscriber.get()), package.jws);
  ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  EXPECT_EQ(active_id(), "p2");
  expect_aka_with_set1("2", 2);
  EXPECT_EQ(nlohmann::json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles").size(), 2u);
}

// A platform software update: a PCR the signed policy names changes. Without a new policy every
// profile is refused (the bootstrap one and the provisioned, deletion-bound one); with a policy
// the authority signs for the new values, every profile works again, nothing re-provisioned.
TEST_F(AProvisionedGateway, KeepsEveryProfileWorkingAcrossAPlatformUpdateWithANewlySignedPolicy) {
  expect_aka_with_set1("1", 2);
  ASSERT_EQ(mcimd.tpm2({"tpm2_pcrextend", "16:sha256=" + std::string(64, 'c')}).exit_code, 0);
  auto c = make_challenge(mcimd, "000000000060");
  auto refused = mcimd.mcimctl({"authenticate", "1", "--rand", c.rand, "--autn", c.autn});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("PlatformStateChanged"), std::string::npos) << refused.err;

  auto approved = mcimd.approve_current_pcrs();
  ASSERT_EQ(approved.exit_code, 0) << approved.err << mcimd.log();
  expect_aka_with_set1("1", 3);
  // The bootstrap profile too (its own keys).
  ASSERT_EQ(mcimd.mcimctl({"enable", "0"}).exit_code, 0) << mcimd.log();
  auto b = make_challenge(mcimd, "000000000040", "000102030405060708090a0b0c0d0e0f",
                          "0f0e0d0c0b0a09080706050403020100");
  auto r = mcimd.mcimctl({"authenticate", "0", "--rand", b.rand, "--autn", b.autn, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  EXPECT_EQ(nlohmann::json::parse(r.out).value("res", ""), b.xres);
}
