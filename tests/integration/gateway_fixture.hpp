#pragma once
// A gateway on swtpm with a bootstrap profile and the operators whose packages it accepts, and
// the operator code that answers its package requests: shared by the provisioning and lifecycle
// tests against the real daemon.
#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "attestation/jws.hpp"
#include "common/bytes.hpp"
#include "operator/package_builder.hpp"
#include "protocol/lifecycle.hpp"
#include "protocol/provisioning.hpp"
#include "tests/support/mcimd_instance.hpp"
#include "tests/support/test_pki.hpp"

namespace mcimd::test {

inline constexpr const char* kOperator = "00101";

inline Bytes random_nonce() {
  Bytes n(protocol::kProvisioningNonceSize);
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1) throw std::runtime_error("RAND_bytes");
  return n;
}

inline op::PolicySigner signer_from(const Credential& c, const std::filesystem::path& dir, const std::string& stem) {
  auto files = c.write(dir, stem);
  auto s = op::load_policy_signer({files.key, files.cert, {}});
  if (!s) throw std::runtime_error("signer: " + s.error().message);
  // The chain beyond the leaf (an intermediate, when the PKI has one) travels in x5c as well.
  s->x5c = c.chain_der;
  return std::move(*s);
}

// Directory where the test's PKI lives, made before the daemon's config names it.
struct PkiDir {
  TempDir dir;
  TestPki pki{"operator 00101"};
  std::filesystem::path anchors = pki.write_root(dir.path(), "operator-00101");
};


class AGatewayBeingProvisioned : public ::testing::Test {
 protected:
  AGatewayBeingProvisioned() : mcimd(with_operator(pki.anchors)) {}
  // Options made from the fixture's PKI (constructed before the daemon's instance).
  explicit AGatewayBeingProvisioned(const std::function<McimdOptions(const PkiDir&)>& options)
      : mcimd(options(pki)) {}

  void SetUp() override {
    ASSERT_TRUE(mcimd.start()) << mcimd.log();
    auto yaml = mcimd.dir() / "bootstrap.yaml";
    std::ofstream(yaml) << kBootstrapProfileYaml;
    auto r = mcimd.mcimctl({"install", yaml.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
    signer = signer_from(pki.pki.document_signer("operator 00101 packages"), pki.dir.path(), "signer");
  }

  // mcimd's package request for a fresh session nonce (Manager.RequestPackage through mcimctl).
  protocol::PackageRequest request(const Bytes& nonce) {
    auto r = mcimd.mcimctl({"package", "request", "--session", "s-1", "--nonce", to_hex(nonce)});
    if (r.exit_code != 0) throw std::runtime_error("package request failed: " + r.err + mcimd.log());
    auto req = protocol::package_request_from_json(r.out);
    if (!req) throw std::runtime_error("package request does not parse: " + req.error().message);
    return *req;
  }

  op::McimCredentials subscription(std::string iccid = "8949001234567890123") {
    op::McimCredentials s;
    s.iccid = std::move(iccid);
    s.imsi = "001010123456789";
    auto k = from_hex(kSet1K, "K").value();
    auto opc = from_hex(kSet1Opc, "OPc").value();
    s.k.assign(k.begin(), k.end());
    s.opc.assign(opc.begin(), opc.end());
    s.sqn.initial = 0x20;
    return s;
  }

  op::PackageOrder order(const protocol::PackageRequest& req, std::string id = "pkg-1") {
    op::PackageOrder o;
    o.package_id = std::move(id);
    o.operator_id = kOperator;
    o.counter = req.counter + 1;
    o.issued = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    return o;
  }

  op::BuiltPackage build(const protocol::PackageRequest& req, const op::McimCredentials& sub, const op::PackageOrder& o,
                         const op::PolicySigner& with) {
    auto built = op::build_package(req, sub, o, with);
    if (!built) throw std::runtime_error("build_package: " + built.error().message);
    return std::move(*built);
  }
  op::BuiltPackage build(const protocol::PackageRequest& req) { return build(req, subscription(), order(req), signer); }

  // A header signed as the operator would (or an attacker holding some signer's key).
  // Any protocol document (a header, a release, a command), signed as its signer would; no checks.
  template <class Document>
  std::string sign(const Document& document, const op::PolicySigner& with) {
    const std::string payload = protocol::to_json(document);
    auto jws = attestation::jws_sign({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}, with.key.get(),
                                     with.x5c);
    if (!jws) throw std::runtime_error("jws_sign: " + jws.error().message);
    return *jws;
  }

  RunResult install(const std::string& package, const std::string& name = "package.jws") {
    auto file = mcimd.dir() / name;
    std::ofstream(file, std::ios::trunc) << package;
    return mcimd.mcimctl({"package", "install", file.string(), "--receipt", (mcimd.dir() / "receipt.json").string()});
  }
  protocol::InstallReceipt receipt() {
    auto r = protocol::install_receipt_from_json(slurp(mcimd.dir() / "receipt.json"));
    if (!r) throw std::runtime_error("receipt does not parse: " + r.error().message);
    return *r;
  }

  // What an attack must leave as it was: the store's state (profiles, counter, installs).
  std::string store_state() { return slurp(mcimd.store() / "store.json"); }
  nlohmann::json state() { return nlohmann::json::parse(store_state())["state"]; }
  static nlohmann::json profile_named(const nlohmann::json& st, const std::string& id) {
    for (const auto& p : st["profiles"])
      if (p["id"] == id) return p;
    throw std::runtime_error("no profile " + id);
  }
  void expect_refused(const std::string& package, const std::string& code, const std::string& what) {
    const std::string before = store_state();
    const std::string list_before = mcimd.mcimctl({"list"}).out;
    auto r = install(package, "attack.jws");
    EXPECT_NE(r.exit_code, 0) << what << ": installed";
    EXPECT_NE(r.err.find(code), std::string::npos) << what << ": expected " << code << ", got: " << r.err;
    EXPECT_EQ(store_state(), before) << what << ": the store changed";
    EXPECT_EQ(mcimd.mcimctl({"list"}).out, list_before) << what;
  }

  void expect_aka_with_set1(const std::string& profile, uint64_t seq) {
    char sqn[13];
    std::snprintf(sqn, sizeof sqn, "%012llx", static_cast<unsigned long long>(seq << 5));
    auto c = make_challenge(mcimd, sqn);
    auto r = mcimd.mcimctl({"authenticate", profile, "--rand", c.rand, "--autn", c.autn, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
    EXPECT_EQ(nlohmann::json::parse(r.out).value("res", ""), c.xres);
  }

  PkiDir pki;
  McimdInstance mcimd;
  op::PolicySigner signer;
};


}  // namespace mcimd::test
