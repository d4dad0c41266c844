// Secrets in the TPM against a private swtpm: sealed data, the store's HMAC key and AES-128 key
// objects, all bound to a policy authority by PolicyAuthorize and used under signed PCR policies.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/policy_authority.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tpm_fixture.hpp"
#include "tpm/testing.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;
using namespace mcimd::tpm;

namespace {

using Block = std::array<uint8_t, 16>;

const std::vector<unsigned> kBound = {7, 14};  // the PCRs the test policies approve

class TpmTest : public test::TpmContextTest {
 protected:
  void SetUp() override {
    TpmContextTest::SetUp();
    policy_ = approve_current();
  }
  // A policy signed by the authority for the current values of PCRs 7 and 14, approved by the TPM.
  ApprovedPolicy approve_current() {
    return test::approve(*ctx_, authority_.authority(), authority_.sign_current(*ctx_, kBound));
  }
  SealOptions bound() const { return authority_.seal_options(); }

  test::TestAuthority authority_;
  ApprovedPolicy policy_;
};

Bytes unhex(const std::string& hex) {
  auto b = from_hex(hex, "test vector");
  EXPECT_TRUE(b) << hex;
  return b ? *b : Bytes{};
}

// K of TS 35.208 test sets 1, 3 and 4.
std::vector<Bytes> ts35208_keys() {
  std::ifstream in(std::string(MCIMD_VECTORS_DIR) + "/milenage-ts35208-sets-1-3-4.csv");
  if (!in) throw std::runtime_error("missing test vectors");
  std::vector<Bytes> keys;
  std::string line;
  std::getline(in, line);  // header: set,K,RAND,...
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream fields(line);
    std::string set, k;
    std::getline(fields, set, ',');
    std::getline(fields, k, ',');
    keys.push_back(unhex(k));
  }
  EXPECT_EQ(keys.size(), 3u);
  return keys;
}

std::vector<Block> openssl_aes128_ecb(const Bytes& key, const std::vector<Block>& blocks) {
  std::vector<Block> out(blocks.size());
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  EXPECT_EQ(EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), nullptr, key.data(), nullptr), 1);
  EVP_CIPHER_CTX_set_padding(c, 0);
  int len = 0;
  EXPECT_EQ(EVP_EncryptUpdate(c, out.front().data(), &len, blocks.front().data(), static_cast<int>(blocks.size() * 16)), 1);
  EXPECT_EQ(len, static_cast<int>(blocks.size() * 16));
  EVP_CIPHER_CTX_free(c);
  return out;
}

std::vector<Block> sample_blocks(std::size_t n, uint8_t seed) {
  std::vector<Block> blocks(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < 16; ++j) blocks[i][j] = static_cast<uint8_t>(seed + i * 31 + j * 7);
  return blocks;
}

Bytes to_bytes(const SecureBytes& s) { return Bytes(s.begin(), s.end()); }

std::string print_public(const Bytes& public_area, const std::filesystem::path& dir) {
  auto path = dir / "object.pub";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(public_area.data()), static_cast<std::streamsize>(public_area.size()));
  }
  auto shown = test::run({"tpm2_print", "-t", "TPM2B_PUBLIC", path.string()});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  return shown.out;
}

}  // namespace

// --- the policy model -----------------------------------------------------------------------------------
TEST_F(TpmTest, BindsObjectsToTheAuthorityNotToPcrValues) {
  auto blob = ctx_->seal(Bytes{1, 2, 3}, bound());
  ASSERT_TRUE(blob) << blob.error().describe();
  auto info = describe_public(blob->public_area);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->auth_policy, authority_.auth_policy());
  // The authPolicy a trial session in the TPM computes for PolicyAuthorize with this key name
  // and policyRef (tpm2_policyauthorize) is ours.
  auto name_file = dir_.path() / "authority.name";
  auto ref_file = dir_.path() / "ref";
  {
    const auto& name = authority_.authority().name;
    std::ofstream(name_file, std::ios::binary).write(reinterpret_cast<const char*>(name.data()),
                                                     static_cast<std::streamsize>(name.size()));
    std::ofstream(ref_file, std::ios::binary) << protocol::kPcrPolicyRef;
  }
  auto session = dir_.path() / "trial.ctx";
  ASSERT_EQ(tools({"tpm2_startauthsession", "-S", session.string()}).exit_code, 0);
  auto authorized = tools({"tpm2_policyauthorize", "-S", session.string(), "-L", (dir_.path() / "policy").string(),
                           "-n", name_file.string(), "-q", ref_file.string()});
  EXPECT_EQ(authorized.exit_code, 0) << authorized.err;
  ASSERT_EQ(tools({"tpm2_flushcontext", session.string()}).exit_code, 0);
  std::ifstream in(dir_.path() / "policy", std::ios::binary);
  Bytes digest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(digest, authority_.auth_policy()) << "tpm2_policyauthorize with the same key name and policyRef";
}

TEST_F(TpmTest, SealsAndUnsealsUnderASignedPolicy) {
  const Bytes secret{0xde, 0xad, 0xbe, 0xef, 0x01};
  auto blob = ctx_->seal(secret, bound());
  ASSERT_TRUE(blob) << blob.error().describe();
  EXPECT_EQ(ctx_->live_handles(), ctx_->kept_sessions());
  auto back = ctx_->unseal(*blob, policy_);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(to_bytes(*back), secret);
  // The kept policy session serves again: Load + PolicyPCR + PolicyAuthorize + Unseal + flush.
  auto before = ctx_->stats().commands;
  ASSERT_TRUE(ctx_->unseal(*blob, policy_));
  EXPECT_EQ(ctx_->stats().commands - before, 5u);
}

TEST_F(TpmTest, SealsTheLargestSecretAndRefusesEmptyOrLargerOnes) {
  Bytes largest(128, 0xab);
  auto blob = ctx_->seal(largest, bound());
  ASSERT_TRUE(blob) << blob.error().describe();
  EXPECT_EQ(to_bytes(*ctx_->unseal(*blob, policy_)), largest);
  EXPECT_EQ(ctx_->seal(Bytes(129, 1), bound()).error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->seal(Bytes{}, bound()).error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->seal(Bytes{1}, SealOptions{Bytes(31, 0), true}).error().code, Code::InvalidArgument);
}

TEST_F(TpmTest, RefusesAfterAnApprovedPcrChangedAndWorksWithANewlySignedPolicy) {
  auto blob = ctx_->seal(Bytes{1, 2, 3, 4}, bound());
  ASSERT_TRUE(blob);
  extend(7);
  auto refused = ctx_->unseal(*blob, policy_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::PlatformStateChanged);
  EXPECT_NE(refused.error().message.find("sha256:7,14"), std::string::npos) << refused.error().message;
  // A firmware update comes with a policy for the new values: the same object works again.
  auto updated = approve_current();
  auto back = ctx_->unseal(*blob, updated);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(to_bytes(*back), (Bytes{1, 2, 3, 4}));
  // The old policy stays refused.
  EXPECT_EQ(ctx_->unseal(*blob, policy_).error().code, Code::PlatformStateChanged);
}

TEST_F(TpmTest, StillUnsealsAfterAPcrThePolicyDoesNotNameChanged) {
  auto blob = ctx_->seal(Bytes{1, 2, 3, 4}, bound());
  ASSERT_TRUE(blob);
  extend(9);
  auto back = ctx_->unseal(*blob, policy_);
  ASSERT_TRUE(back) << back.error().describe();
}

TEST_F(TpmTest, RefusesAPolicyOfAnotherAuthority) {
  auto blob = ctx_->seal(Bytes{5, 6}, bound());
  ASSERT_TRUE(blob);
  test::TestAuthority other;
  auto foreign = test::approve(*ctx_, other.authority(), other.sign_current(*ctx_, kBound));
  auto refused = ctx_->unseal(*blob, foreign);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::PlatformStateChanged);
  EXPECT_NE(refused.error().message.find("not bound to the signed policy's authority"), std::string::npos)
      << refused.error().message;
}

TEST_F(TpmTest, TheTpmRefusesAForgedApproval) {
  auto signed_policy = authority_.sign_current(*ctx_, kBound);
  // The authority signed these values; a forger changes one and keeps the signature.
  auto forged = signed_policy;
  forged.pcrs.values[14] = Bytes(32, 0x42);
  forged.approved_policy = *protocol::pcr_policy_digest(forged.pcrs);
  auto ticket = ctx_->verify_signature(authority_.authority().public_area,
                                       protocol::approval_digest(forged.approved_policy, forged.policy_ref),
                                       forged.signature);
  ASSERT_FALSE(ticket);
  EXPECT_EQ(ticket.error().code, Code::NotAuthorized);
  // A ticket for one approved policy does not authorize another one.
  auto approved = approve_current();
  approved.approved_policy = forged.approved_policy;
  approved.pcr_digest = protocol::pcr_values_digest(forged.pcrs);
  auto blob = ctx_->seal(Bytes{7}, bound());
  ASSERT_TRUE(blob);
  EXPECT_EQ(ctx_->unseal(*blob, approved).error().code, Code::PlatformStateChanged);
}

TEST_F(TpmTest, UnsealsAfterAPowerCycleRestoresThePcrs) {
  auto blob = ctx_->seal(Bytes{5, 6}, bound());
  ASSERT_TRUE(blob);
  extend(14);
  ASSERT_FALSE(ctx_->unseal(*blob, policy_));
  ctx_.reset();
  tpm_.restart();
  open();
  auto back = ctx_->unseal(*blob, policy_);  // the ticket outlives the power cycle
  ASSERT_TRUE(back) << back.error().describe();
}

TEST_F(TpmTest, RefusesAMalformedBlob) {
  auto blob = ctx_->seal(Bytes{1}, bound());
  ASSERT_TRUE(blob);
  KeyBlob truncated = *blob;
  truncated.private_area.resize(truncated.private_area.size() / 2);
  auto back = ctx_->unseal(truncated, policy_);
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code, Code::InvalidArgument);
  KeyBlob tampered = *blob;
  tampered.private_area.back() ^= 0x01;  // still well-formed: only the TPM's integrity check can tell
  auto refused = ctx_->unseal(tampered, policy_);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("Failed to load the sealed object"), std::string::npos)
      << refused.error().message;
}

TEST_F(TpmTest, RedoesThePolicyWhenPcrsChangeBetweenPolicyAndUnseal) {
  auto blob = ctx_->seal(Bytes{3, 1, 4}, bound());
  ASSERT_TRUE(blob);
  ASSERT_TRUE(ctx_->unseal(*blob, policy_));  // the policy session exists: 5 commands from here on
  seam::inject_response(*ctx_, {seam::kRcPcrChanged, 1, seam::kCcUnseal, std::nullopt});
  auto before = ctx_->stats().commands;
  auto back = ctx_->unseal(*blob, policy_);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(to_bytes(*back), (Bytes{3, 1, 4}));
  // The answered Unseal never reached the TPM; the policy was redone and the object unsealed:
  // Load + PolicyPCR + PolicyAuthorize, then PolicyRestart + PolicyPCR + PolicyAuthorize + Unseal
  // + flush.
  EXPECT_EQ(ctx_->stats().commands - before, 8u) << "the policy was not redone";
}

TEST_F(TpmTest, ReportsAPolicyFailureOfTheUseAsPlatformStateChanged) {
  auto blob = ctx_->seal(Bytes{2, 7}, bound());
  ASSERT_TRUE(blob);
  seam::inject_response(*ctx_, {seam::kRcPolicyFailS1, 1, seam::kCcUnseal, std::nullopt});
  auto back = ctx_->unseal(*blob, policy_);
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code, Code::PlatformStateChanged);
  // The session held a half-used policy: the next use restarts it and succeeds.
  EXPECT_TRUE(ctx_->unseal(*blob, policy_));
}

TEST_F(TpmTest, StartsANewPolicySessionWhenAnotherClientFlushedIt) {
  auto blob = ctx_->seal(Bytes{8, 8}, bound());
  ASSERT_TRUE(blob);
  ASSERT_TRUE(ctx_->unseal(*blob, policy_));
  ASSERT_EQ(ctx_->kept_sessions(), 1u);
  auto flushed = tools({"tpm2_flushcontext", "-l"});  // every loaded session, ours included
  ASSERT_EQ(flushed.exit_code, 0) << flushed.err;
  ASSERT_EQ(getcap("handles-loaded-session"), "") << "the kept session is gone";
  auto back = ctx_->unseal(*blob, policy_);
  ASSERT_TRUE(back) << back.error().describe();
}

// --- the store's HMAC key --------------------------------------------------------------------------------
TEST_F(TpmTest, HmacKeyIsDrawnByTheTpmAndUsableOnlyUnderThePolicy) {
  auto key = ctx_->create_hmac_key(bound());
  ASSERT_TRUE(key) << key.error().describe();
  auto info = describe_public(key->public_area);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->kind, PublicInfo::Kind::HmacKey);
  EXPECT_TRUE(info->sensitive_data_origin);
  EXPECT_FALSE(info->user_with_auth);
  const Bytes label{'s', 't', 'o', 'r', 'e'};
  auto first = ctx_->hmac(*key, label, policy_);
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_EQ(first->size(), 32u);
  auto again = ctx_->hmac(*key, label, policy_);
  ASSERT_TRUE(again);
  EXPECT_EQ(to_bytes(*again), to_bytes(*first));
  auto other_key = ctx_->create_hmac_key(bound());
  ASSERT_TRUE(other_key);
  EXPECT_NE(to_bytes(*ctx_->hmac(*other_key, label, policy_)), to_bytes(*first)) << "each key is the TPM's own draw";
  EXPECT_EQ(ctx_->hmac(*key, Bytes(1025, 0), policy_).error().code, Code::InvalidArgument);
  extend(7);
  EXPECT_EQ(ctx_->hmac(*key, label, policy_).error().code, Code::PlatformStateChanged);
}

// --- AES-128 key objects -----------------------------------------------------------------------------------
TEST_F(TpmTest, SupportsEncryptDecrypt2InEcbMode) {
  auto ok = ctx_->check_encrypt_decrypt_support();
  EXPECT_TRUE(ok) << ok.error().describe();
}

TEST_F(TpmTest, EncryptsLikeOpenSslWithEveryTs35208KeyInThreeCommandsPerRequest) {
  for (const Bytes& k : ts35208_keys()) {
    auto blob = ctx_->create_aes_key(k, bound());
    ASSERT_TRUE(blob) << blob.error().describe();
    auto key = ctx_->load_aes_key(*blob);
    ASSERT_TRUE(key) << key.error().describe();
    EXPECT_EQ(ctx_->live_handles(), ctx_->kept_sessions() + 1);
    ASSERT_TRUE(key->encrypt_ecb(sample_blocks(1, 0), policy_));  // first use: input buffer size known after
    for (std::size_t n : {1u, 5u, 1u, 5u}) {  // repeated: the policy session is re-satisfied each time
      auto blocks = sample_blocks(n, k[0]);
      auto before = ctx_->stats();
      auto out = key->encrypt_ecb(blocks, policy_);
      ASSERT_TRUE(out) << out.error().describe();
      EXPECT_EQ(*out, openssl_aes128_ecb(k, blocks)) << n << " blocks";
      auto after = ctx_->stats();
      EXPECT_EQ(after.encrypt_decrypt - before.encrypt_decrypt, 1u);
      EXPECT_EQ(after.commands - before.commands, 3u) << "PolicyPCR + PolicyAuthorize + EncryptDecrypt2";
    }
    auto moved = std::move(*key);  // ownership moves; the key stays loaded once
    EXPECT_EQ(ctx_->live_handles(), ctx_->kept_sessions() + 1);
    ASSERT_TRUE(moved.encrypt_ecb(sample_blocks(1, 0), policy_));
  }
  EXPECT_EQ(ctx_->live_handles(), ctx_->kept_sessions());
}

TEST_F(TpmTest, SplitsARequestLargerThanTheTpmInputBuffer) {
  Bytes k = ts35208_keys().front();
  auto blob = ctx_->create_aes_key(k, bound());
  ASSERT_TRUE(blob);
  auto key = ctx_->load_aes_key(*blob);
  ASSERT_TRUE(key);
  auto blocks = sample_blocks(100, 3);  // 1600 bytes; swtpm takes 1024 per command
  auto before = ctx_->stats().encrypt_decrypt;
  auto out = key->encrypt_ecb(blocks, policy_);
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out, openssl_aes128_ecb(k, blocks));
  EXPECT_EQ(ctx_->stats().encrypt_decrypt - before, 2u);
  auto none = key->encrypt_ecb({}, policy_);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(TpmTest, AesKeyRefusesAfterAnApprovedPcrChangedUntilANewPolicyComes) {
  Bytes k = ts35208_keys().front();
  auto blob = ctx_->create_aes_key(k, bound());
  ASSERT_TRUE(blob);
  auto key = ctx_->load_aes_key(*blob);
  ASSERT_TRUE(key);
  ASSERT_TRUE(key->encrypt_ecb(sample_blocks(1, 0), policy_));
  extend(14);
  auto out = key->encrypt_ecb(sample_blocks(1, 0), policy_);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Code::PlatformStateChanged);
  auto updated = approve_current();
  auto again = key->encrypt_ecb(sample_blocks(1, 0), updated);
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(*again, openssl_aes128_ecb(k, sample_blocks(1, 0)));
}

TEST_F(TpmTest, AesKeyRecoversItsPolicySessionAfterAFailedUse) {
  Bytes k = ts35208_keys().back();
  auto blob = ctx_->create_aes_key(k, bound());
  ASSERT_TRUE(blob);
  auto key = ctx_->load_aes_key(*blob);
  ASSERT_TRUE(key);
  // The TPM saw the policy commands but not the use: the session still holds that policy.
  seam::inject_response(*ctx_, {seam::kRcPolicyFailS1, 1, seam::kCcEncryptDecrypt2, std::nullopt});
  EXPECT_EQ(key->encrypt_ecb(sample_blocks(2, 1), policy_).error().code, Code::PlatformStateChanged);
  auto out = key->encrypt_ecb(sample_blocks(2, 1), policy_);
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out, openssl_aes128_ecb(k, sample_blocks(2, 1)));
  // And the PCR_CHANGED case is redone within the same call.
  seam::inject_response(*ctx_, {seam::kRcPcrChanged, 1, seam::kCcEncryptDecrypt2, std::nullopt});
  auto before = ctx_->stats();
  auto redone = key->encrypt_ecb(sample_blocks(5, 2), policy_);
  ASSERT_TRUE(redone) << redone.error().describe();
  EXPECT_EQ(*redone, openssl_aes128_ecb(k, sample_blocks(5, 2)));
  // PolicyPCR + PolicyAuthorize, the answered EncryptDecrypt2, then PolicyRestart + PolicyPCR +
  // PolicyAuthorize + EncryptDecrypt2: one encryption at the TPM, after the policy was redone.
  EXPECT_EQ(ctx_->stats().commands - before.commands, 6u) << "the policy was not redone";
  EXPECT_EQ(ctx_->stats().encrypt_decrypt - before.encrypt_decrypt, 1u);
}

TEST_F(TpmTest, AesKeyIsLoadedAgainWhenAnotherClientFlushedIt) {
  Bytes k = ts35208_keys()[1];
  auto blob = ctx_->create_aes_key(k, bound());
  ASSERT_TRUE(blob);
  auto key = ctx_->load_aes_key(*blob);
  ASSERT_TRUE(key);
  ASSERT_TRUE(key->encrypt_ecb(sample_blocks(1, 4), policy_));
  auto flushed = tools({"tpm2_flushcontext", "-t"});  // every transient object, K included
  ASSERT_EQ(flushed.exit_code, 0) << flushed.err;
  ASSERT_EQ(getcap("handles-transient"), "") << "K is gone";
  auto out = key->encrypt_ecb(sample_blocks(3, 4), policy_);
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out, openssl_aes128_ecb(k, sample_blocks(3, 4)));
}

TEST_F(TpmTest, ReportsAMissingEncryptDecrypt2AsUnsupported) {
  Bytes k = ts35208_keys().front();
  auto blob = ctx_->create_aes_key(k, bound());
  ASSERT_TRUE(blob);
  auto key = ctx_->load_aes_key(*blob);
  ASSERT_TRUE(key);
  seam::inject_response(*ctx_, {seam::kRcCommandCode, 1, seam::kCcEncryptDecrypt2, std::nullopt});
  auto out = key->encrypt_ecb(sample_blocks(1, 0), policy_);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Code::Unsupported);
}

TEST_F(TpmTest, RefusesAnAesKeyOfTheWrongSize) {
  EXPECT_EQ(ctx_->create_aes_key(Bytes(15, 1), bound()).error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->create_aes_key(Bytes(32, 1), bound()).error().code, Code::InvalidArgument);
}

TEST_F(TpmTest, AesKeyObjectIsBoundToThisTpmToEcbAndToEncryption) {
  auto blob = ctx_->create_aes_key(Bytes(16, 7), bound());
  ASSERT_TRUE(blob);
  auto shown = print_public(blob->public_area, dir_.path());
  for (const char* expected : {"fixedtpm", "fixedparent", "adminwithpolicy", "noda", "sign", "ecb"})
    EXPECT_NE(shown.find(expected), std::string::npos) << expected << " in\n" << shown;
  for (const char* absent : {"userwithauth", "sensitivedataorigin", "decrypt"})
    EXPECT_EQ(shown.find(absent), std::string::npos) << absent << " in\n" << shown;
}

// DESIGN.md: a sniffer on the TPM bus learns nothing. The pcap TCTI records every byte exchanged
// with the TPM; neither the secrets nor the AES blocks in or out may appear in it.
TEST_F(TpmTest, SendsNoSecretOverTheTransportInTheClear) {
  ctx_.reset();
  auto capture = tpm_.state_dir() / "bus.pcap";
  ASSERT_EQ(setenv("TCTI_PCAP_FILE", capture.c_str(), 1), 0);
  auto ctx = Context::open(ContextOptions{"pcap:" + tpm_.tcti(), {}});
  ASSERT_TRUE(ctx) << ctx.error().describe();
  ctx_ = std::move(*ctx);

  Bytes opc = unhex("cd63cb71954a9f4e48a5994e37a02baf");
  Bytes k = ts35208_keys().front();
  SecureBytes counter_auth(32, 0x6b);
  auto blocks = sample_blocks(5, 0x33);
  auto srk = ctx_->srk_public();
  ASSERT_TRUE(srk);
  auto sealed = ctx_->seal(opc, bound());
  ASSERT_TRUE(sealed);
  auto unsealed = ctx_->unseal(*sealed, policy_);
  ASSERT_TRUE(unsealed);
  EXPECT_EQ(to_bytes(*unsealed), opc);
  auto hmac_key = ctx_->create_hmac_key(bound());
  ASSERT_TRUE(hmac_key);
  auto mac = ctx_->hmac(*hmac_key, Bytes{1, 2, 3}, policy_);
  ASSERT_TRUE(mac);
  ASSERT_TRUE(ctx_->counter_define(CounterSpec{0x01004d43, counter_auth}));
  ASSERT_TRUE(ctx_->counter_increment(CounterSpec{0x01004d43, counter_auth}));
  auto k_blob = ctx_->create_aes_key(k, bound());
  ASSERT_TRUE(k_blob);
  std::vector<Block> out;
  {
    auto key = ctx_->load_aes_key(*k_blob);
    ASSERT_TRUE(key);
    auto encrypted = key->encrypt_ecb(blocks, policy_);
    ASSERT_TRUE(encrypted);
    out = *encrypted;
  }
  EXPECT_EQ(out, openssl_aes128_ecb(k, blocks));
  ctx_.reset();  // flushes the capture
  unsetenv("TCTI_PCAP_FILE");

  std::ifstream in(capture, std::ios::binary);
  std::string wire((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto seen = [&](const uint8_t* p, std::size_t n) {
    return wire.find(std::string(reinterpret_cast<const char*>(p), n)) != std::string::npos;
  };
  ASSERT_TRUE(seen(srk->data(), srk->size())) << "the capture should hold the SRK public area in the clear";
  EXPECT_FALSE(seen(opc.data(), opc.size())) << "OPc crossed the bus in the clear";
  EXPECT_FALSE(seen(k.data(), k.size())) << "K crossed the bus in the clear";
  EXPECT_FALSE(seen(mac->data(), mac->size())) << "the store key's HMAC crossed the bus in the clear";
  EXPECT_FALSE(seen(counter_auth.data(), counter_auth.size())) << "the counter's auth crossed the bus in the clear";
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    EXPECT_FALSE(seen(blocks[i].data(), 16)) << "input block " << i << " crossed the bus in the clear";
    EXPECT_FALSE(seen(out[i].data(), 16)) << "output block " << i << " crossed the bus in the clear";
  }
}
