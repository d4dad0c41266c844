// Remote provisioning against the real daemon on swtpm: a package request made by mcimd, a
// package built for it by the operator code, installed with TPM2_Import over D-Bus, the receipt
// verified by the operator, the new profile answering AKA. Then every attack a package can carry,
// each refused with its named error while the store and the package counter stay as they were,
// and the daemon killed between the steps.
#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "attestation/jws.hpp"
#include "common/bytes.hpp"
#include "operator/package_builder.hpp"
#include "protocol/provisioning.hpp"
#include "tests/support/mcimd_instance.hpp"
#include "tests/support/test_pki.hpp"
#include "tests/integration/gateway_fixture.hpp"

using namespace mcimd;
using namespace mcimd::test;
using nlohmann::json;


TEST_F(AGatewayBeingProvisioned, GoesFromBootstrapToAnOperationalProfileAndTheOperatorVerifiesTheReceipt) {
  const Bytes nonce = random_nonce();
  auto req = request(nonce);
  // The operator's checks of the request: the device, its nonce, the SRK its AK certified.
  const Bytes ak = req.evidence.ak_public;
  ASSERT_TRUE(op::check_package_request(req, ak, nonce)) << op::check_package_request(req, ak, nonce).error().message;
  EXPECT_EQ(req.counter, 0u);
  auto built = build(req);

  auto r = install(built.jws);
  ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  auto body = op::verify_install_receipt(receipt(), ak,
                                         {built.header.package_id, req.device, built.header.counter, built.sha256,
                                          built.header.iccid});
  ASSERT_TRUE(body) << body.error().message;
  EXPECT_EQ(body->profile_class, "operational");

  // The operational profile is active and answers AKA with the K and OPc the operator sent;
  // the bootstrap profile is kept, disabled, for fallback.
  auto list = json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles");
  ASSERT_EQ(list.size(), 2u) << list.dump();
  EXPECT_EQ(list[0].value("class", ""), "bootstrap");
  EXPECT_EQ(list[0].value("state", ""), "disabled");
  EXPECT_EQ(list[1].value("class", ""), "operational");
  EXPECT_EQ(list[1].value("state", ""), "enabled");
  expect_aka_with_set1(std::to_string(body->profile), 2);

  // The next request names the accepted counter; a package above it installs as well.
  auto next = request(random_nonce());
  EXPECT_EQ(next.counter, built.header.counter);
}

TEST_F(AGatewayBeingProvisioned, RefusesEveryForgedOrMisdirectedPackageAndChangesNothing) {
  const Bytes nonce = random_nonce();
  auto req = request(nonce);
  auto good = build(req);

  // Tampered: one character of the signed payload changed.
  {
    std::string tampered = good.jws;
    const auto dot = tampered.find('.');
    tampered[dot + 10] = tampered[dot + 10] == 'A' ? 'B' : 'A';
    expect_refused(tampered, "SignatureInvalid", "tampered package");
  }
  // Made for another device.
  {
    auto h = good.header;
    h.device = "000b" + std::string(64, 'a');
    expect_refused(sign(h, signer), "WrongDevice", "package for another device");
  }
  // Answering no request of this daemon (a nonce it never drew).
  {
    auto h = good.header;
    h.device_nonce = random_nonce();
    expect_refused(sign(h, signer), "Replayed", "package for a nonce never requested");
  }
  // Signed by a CA the gateway does not trust for this operator.
  {
    TestPki other("someone else");
    auto s = signer_from(other.document_signer(), pki.dir.path(), "other");
    expect_refused(build(req, subscription(), order(req), s).jws, "UntrustedSigner", "untrusted signer");
  }
  // Signed by the operator's PKI, but with a TLS server certificate: the wrong purpose.
  {
    auto s = signer_from(pki.pki.tls_server(), pki.dir.path(), "tls");
    expect_refused(build(req, subscription(), order(req), s).jws, "UntrustedSigner", "wrong certificate purpose");
  }
  // Expired.
  {
    auto o = order(req);
    o.issued -= std::chrono::hours{48};
    o.lifetime = std::chrono::hours{1};
    expect_refused(build(req, subscription(), o, signer).jws, "Expired", "expired package");
  }
  // An algorithm mcimd does not implement, named in the error.
  {
    auto h = good.header;
    h.algorithm = "tuak";
    const std::string refused = sign(h, signer);
    expect_refused(refused, "Unsupported", "unknown algorithm");
    EXPECT_NE(install(refused, "attack.jws").err.find("tuak"), std::string::npos);
  }
  // Blobs made for another TPM's SRK: named as such in the header, and disguised as ours.
  {
    Swtpm other;
    auto run_tool = [&](std::vector<std::string> argv) {
      auto r = run(argv, {{"TPM2TOOLS_TCTI", other.tcti()}});
      if (r.exit_code != 0) throw std::runtime_error(argv[0] + ": " + r.err);
    };
    auto ctx = pki.dir.path() / "other.ctx", pub = pki.dir.path() / "other.pub";
    run_tool({"tpm2_createprimary", "-C", "o", "-G", "ecc", "-c", ctx.string()});
    run_tool({"tpm2_readpublic", "-c", ctx.string(), "-o", pub.string()});
    const std::string other_srk = slurp(pub);
    auto foreign = req;
    foreign.srk_public.assign(other_srk.begin(), other_srk.end());
    auto made_for_other = build(foreign, subscription(), order(req), signer);
    expect_refused(made_for_other.jws, "TpmMismatch", "blobs for another TPM");
    auto h = made_for_other.header;
    h.srk_name = good.header.srk_name;
    expect_refused(sign(h, signer), "TpmMismatch", "blobs for another TPM named as this TPM's");
  }

  // After all that, the genuine package still installs: nothing above consumed its nonce.
  auto r = install(good.jws);
  EXPECT_EQ(r.exit_code, 0) << r.err << mcimd.log();

  // Replayed: the counter is now 1; a package with counter 1 for a fresh request is refused.
  auto again = request(random_nonce());
  ASSERT_EQ(again.counter, good.header.counter);
  auto old = build(again, subscription("8949001234567890124"), order(again, "pkg-2"), signer).header;
  old.counter = good.header.counter;
  expect_refused(sign(old, signer), "Replayed", "old counter");
}

TEST_F(AGatewayBeingProvisioned, SurvivesADaemonKilledAtEachStep) {
  // Killed after the request: the request's nonce is gone with the daemon, so its answer is
  // refused after the restart; a new request gets through.
  auto req = request(random_nonce());
  auto pkg = build(req);
  mcimd.kill();
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  expect_refused(pkg.jws, "Replayed", "an answer to a request of the daemon before the restart");

  // Killed after the install committed, before the agent got the receipt: the same package
  // again answers a fresh receipt for the same profile, and installs nothing twice.
  auto req2 = request(random_nonce());
  auto pkg2 = build(req2);
  ASSERT_EQ(install(pkg2.jws).exit_code, 0) << mcimd.log();
  const auto first = receipt();
  mcimd.kill();
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  const std::string before = store_state();
  auto r = install(pkg2.jws);
  ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  EXPECT_EQ(store_state(), before);
  auto second = receipt();
  EXPECT_EQ(second.body, first.body);
  EXPECT_TRUE(op::verify_install_receipt(second, req2.evidence.ak_public,
                                         {pkg2.header.package_id, req2.device, pkg2.header.counter, pkg2.sha256,
                                          pkg2.header.iccid}));
  EXPECT_EQ(json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles").size(), 2u);
}

// The operator's rules travel in the signed header and bind the gateway's own administrator:
// a profile that may not be disabled, deleted, left for the bootstrap profile or for another
// operator while locked is refused by name, and nothing changes.
TEST_F(AGatewayBeingProvisioned, HonoursTheOperatorsRulesForLocalChanges) {
  auto req = request(random_nonce());
  auto sub = subscription();
  sub.rules.disable_allowed = false;
  sub.rules.delete_allowed = false;
  sub.rules.fallback_allowed = false;
  sub.rules.locked_until = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()) +
                           std::chrono::hours{24 * 365};
  auto built = build(req, sub, order(req), signer);
  ASSERT_EQ(install(built.jws).exit_code, 0) << mcimd.log();
  const std::string operational = std::to_string(op::verify_install_receipt(receipt(), req.evidence.ak_public,
                                                                            {built.header.package_id, req.device,
                                                                             built.header.counter, built.sha256,
                                                                             built.header.iccid})
                                                     ->profile);
  const std::string before = store_state();
  for (const auto& [args, rule] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"disable", operational}, "locked to its operator until"},
           // The bootstrap profile is the same operator's: the lock allows it, the fallback rule not.
           {{"enable", "0"}, "fallback to the bootstrap profile is not allowed"},
           {{"delete", operational}, "enabled"}}) {
    auto r = mcimd.mcimctl(args);
    EXPECT_NE(r.exit_code, 0) << args[0] << " was allowed";
    EXPECT_NE(r.err.find(rule), std::string::npos) << args[0] << ": " << r.err;
  }
  EXPECT_EQ(store_state(), before);
  expect_aka_with_set1(operational, 2);
}

TEST_F(AGatewayBeingProvisioned, NamesEachRuleThatRefusesALocalChange) {
  auto req = request(random_nonce());
  auto sub = subscription();
  sub.rules.disable_allowed = true;
  sub.rules.fallback_allowed = false;
  sub.rules.delete_allowed = false;
  ASSERT_EQ(install(build(req, sub, order(req), signer).jws).exit_code, 0) << mcimd.log();
  const std::string before = store_state();
  // Back to the bootstrap profile: not allowed by this operator.
  auto fallback = mcimd.mcimctl({"enable", "0"});
  EXPECT_NE(fallback.exit_code, 0);
  EXPECT_NE(fallback.err.find("fallback to the bootstrap profile is not allowed"), std::string::npos) << fallback.err;
  EXPECT_NE(fallback.err.find("NotAuthorized"), std::string::npos) << fallback.err;
  EXPECT_EQ(store_state(), before);
  // Disabling is allowed; deleting is not.
  ASSERT_EQ(mcimd.mcimctl({"disable", "1"}).exit_code, 0);
  auto del = mcimd.mcimctl({"delete", "1"});
  EXPECT_NE(del.exit_code, 0);
  EXPECT_NE(del.err.find("deletion is not allowed"), std::string::npos) << del.err;
  EXPECT_EQ(json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles").size(), 2u);
}

TEST_F(AGatewayBeingProvisioned, LetsTheAdministratorChangeWhatTheRulesAllow) {
  auto req = request(random_nonce());
  ASSERT_EQ(install(build(req).jws).exit_code, 0) << mcimd.log();  // default rules: everything allowed
  EXPECT_EQ(mcimd.mcimctl({"enable", "0"}).exit_code, 0) << mcimd.log();  // fallback to bootstrap
  EXPECT_EQ(mcimd.mcimctl({"delete", "1"}).exit_code, 0) << mcimd.log();
  EXPECT_EQ(json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles").size(), 1u);
}
