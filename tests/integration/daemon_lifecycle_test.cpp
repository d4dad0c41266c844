// Profile lifecycle against the real daemon on swtpm: verifiable deletion (a copy of a deleted
// profile's objects is refused by the TPM, a restored store by the anti-rollback counter), the
// deletion records a receipt is made from, and change of subscription.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "protocol/pcr_policy.hpp"
#include "tests/integration/gateway_fixture.hpp"
#include "tests/support/policy_authority.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;
using namespace mcimd::test;
using nlohmann::json;

namespace {

using Block = std::array<uint8_t, 16>;

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
  json state() { return json::parse(slurp(mcimd.store() / "store.json"))["state"]; }
  json profile_named(const json& st, const std::string& id) {
    for (const auto& p : st["profiles"])
      if (p["id"] == id) return p;
    throw std::runtime_error("no profile " + id);
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
  char index[16];
  std::snprintf(index, sizeof index, "0x%08x", p1["deletion"]["nv_index"].get<uint32_t>());
  auto advanced = mcimd.tpm2({"tpm2_nvincrement", "-C", index, index});
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
