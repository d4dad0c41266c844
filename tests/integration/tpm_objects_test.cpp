// Secrets in the TPM against a private swtpm: sealed data and AES-128 key objects under PolicyPCR.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.hpp"
#include "tests/support/swtpm.hpp"
#include "tpm/testing.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;
using namespace mcimd::tpm;

namespace {

using Block = std::array<uint8_t, 16>;

// As in tpm_context_test: a private swtpm per test, and no handle may be left loaded.
class TpmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ctx = Context::open(ContextOptions{tpm_.tcti(), {}});
    ASSERT_TRUE(ctx) << ctx.error().describe();
    ctx_ = std::move(*ctx);
  }

  void TearDown() override {
    if (ctx_) {
      EXPECT_EQ(ctx_->live_handles(), 0u);
    }
    ctx_.reset();
    EXPECT_EQ(getcap("handles-transient"), "");
    EXPECT_EQ(getcap("handles-loaded-session"), "");
  }

  std::string getcap(const std::string& what) {
    auto r = test::run({"tpm2_getcap", what}, {{"TPM2TOOLS_TCTI", tpm_.tcti()}});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  void extend(unsigned pcr) { ASSERT_TRUE(ctx_->pcr_extend(pcr, "sha256", Bytes(32, 0x5A))); }

  test::Swtpm tpm_;
  std::unique_ptr<Context> ctx_;
};

const PcrSelection kPcrs{"sha256", {7, 14}};

Bytes unhex(const std::string& hex) {
  auto b = from_hex(hex, "test vector");
  EXPECT_TRUE(b) << hex;
  return b ? *b : Bytes{};
}

// K of TS 35.208 test sets 1, 3 and 4.
std::vector<Bytes> ts35208_keys() {
  std::ifstream in(std::string(MCIMD_VECTORS_DIR) + "/milenage-ts35208-sets-1-3-4.csv");
  EXPECT_TRUE(in) << "missing test vectors";
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

}  // namespace

// --- sealed data ---------------------------------------------------------------------------------------
TEST_F(TpmTest, SealsAndUnsealsASecret) {
  Bytes secret = unhex("cd63cb71954a9f4e48a5994e37a02baf");
  auto blob = ctx_->seal(secret, SealOptions{kPcrs, /*no_da=*/true});
  ASSERT_TRUE(blob) << blob.error().describe();
  EXPECT_FALSE(blob->public_area.empty());
  EXPECT_FALSE(blob->private_area.empty());
  EXPECT_EQ(ctx_->live_handles(), 0u);
  auto back = ctx_->unseal(*blob, kPcrs);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(to_bytes(*back), secret);
  EXPECT_EQ(ctx_->live_handles(), 0u);
  // Twice, to be sure nothing stays loaded that a second use would trip over.
  ASSERT_TRUE(ctx_->unseal(*blob, kPcrs));
}

TEST_F(TpmTest, SealsTheLargestSecretAndRefusesEmptyOrLargerOnes) {
  Bytes largest(128, 0x42);
  auto blob = ctx_->seal(largest, SealOptions{kPcrs, true});
  ASSERT_TRUE(blob) << blob.error().describe();
  EXPECT_EQ(to_bytes(*ctx_->unseal(*blob, kPcrs)), largest);
  EXPECT_EQ(ctx_->seal(Bytes(129, 1), SealOptions{kPcrs, true}).error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->seal(Bytes{}, SealOptions{kPcrs, true}).error().code, Code::InvalidArgument);
}

TEST_F(TpmTest, SealsWithoutPcrBinding) {
  auto blob = ctx_->seal(Bytes{9, 8, 7}, SealOptions{PcrSelection{"sha256", {}}, true});
  ASSERT_TRUE(blob) << blob.error().describe();
  extend(7);
  auto back = ctx_->unseal(*blob, PcrSelection{"sha256", {}});
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(to_bytes(*back), (Bytes{9, 8, 7}));
}

TEST_F(TpmTest, RefusesToUnsealAfterASelectedPcrChanged) {
  auto blob = ctx_->seal(Bytes{1, 2, 3, 4}, SealOptions{kPcrs, true});
  ASSERT_TRUE(blob);
  extend(14);
  auto back = ctx_->unseal(*blob, kPcrs);
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code, Code::PlatformStateChanged);
  EXPECT_NE(back.error().message.find("platform state no longer matches"), std::string::npos) << back.error().message;
  EXPECT_EQ(ctx_->live_handles(), 0u);
}

TEST_F(TpmTest, StillUnsealsAfterAnUnselectedPcrChanged) {
  auto blob = ctx_->seal(Bytes{1, 2, 3, 4}, SealOptions{kPcrs, true});
  ASSERT_TRUE(blob);
  extend(15);
  ASSERT_TRUE(ctx_->pcr_extend(7, "sha1", Bytes(20, 1)));  // same index, another bank
  auto back = ctx_->unseal(*blob, kPcrs);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(to_bytes(*back), (Bytes{1, 2, 3, 4}));
}

TEST_F(TpmTest, UnsealsAfterAPowerCycleRestoresThePcrs) {
  auto blob = ctx_->seal(Bytes{5, 6}, SealOptions{kPcrs, true});
  ASSERT_TRUE(blob);
  extend(7);
  ASSERT_FALSE(ctx_->unseal(*blob, kPcrs));
  ctx_.reset();
  tpm_.restart();
  auto ctx = Context::open(ContextOptions{tpm_.tcti(), {}});
  ASSERT_TRUE(ctx);
  ctx_ = std::move(*ctx);
  auto back = ctx_->unseal(*blob, kPcrs);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(to_bytes(*back), (Bytes{5, 6}));
}

TEST_F(TpmTest, RefusesAMalformedBlob) {
  auto blob = ctx_->seal(Bytes{1}, SealOptions{kPcrs, true});
  ASSERT_TRUE(blob);
  KeyBlob truncated = *blob;
  truncated.private_area.resize(truncated.private_area.size() - 1);
  auto back = ctx_->unseal(truncated, kPcrs);
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code, Code::InvalidArgument);
  KeyBlob tampered = *blob;
  tampered.private_area.back() ^= 1;
  auto refused = ctx_->unseal(tampered, kPcrs);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::TpmFailure);
  EXPECT_NE(refused.error().message.find("Failed to load the sealed object"), std::string::npos)
      << refused.error().message;
}

TEST_F(TpmTest, RedoesThePolicyWhenPcrsChangeBetweenPolicyAndUnseal) {
  auto blob = ctx_->seal(Bytes{3, 1, 4}, SealOptions{kPcrs, true});
  ASSERT_TRUE(blob);
  auto start = ctx_->stats().commands;
  ASSERT_TRUE(ctx_->unseal(*blob, kPcrs));
  auto plain = ctx_->stats().commands - start;

  seam::inject_response(*ctx_, {seam::kRcPcrChanged, 1, seam::kCcUnseal});
  start = ctx_->stats().commands;
  auto back = ctx_->unseal(*blob, kPcrs);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(to_bytes(*back), (Bytes{3, 1, 4}));
  // PolicyRestart + PolicyPCR again; the answered Unseal never reached the TPM.
  EXPECT_EQ(ctx_->stats().commands - start, plain + 2);
}

TEST_F(TpmTest, ReportsAPolicyFailureOnAnySessionAsPlatformStateChanged) {
  auto blob = ctx_->seal(Bytes{2, 7}, SealOptions{kPcrs, true});
  ASSERT_TRUE(blob);
  seam::inject_response(*ctx_, {seam::kRcPolicyFailS1, 1, seam::kCcUnseal});
  auto back = ctx_->unseal(*blob, kPcrs);
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code, Code::PlatformStateChanged);
}

// --- AES-128 key objects -----------------------------------------------------------------------------------
TEST_F(TpmTest, SupportsEncryptDecrypt2InEcbMode) {
  auto ok = ctx_->check_encrypt_decrypt_support();
  EXPECT_TRUE(ok) << ok.error().describe();
}

TEST_F(TpmTest, EncryptsLikeOpenSslWithEveryTs35208KeyInOneTpmCallPerRequest) {
  for (const Bytes& k : ts35208_keys()) {
    auto blob = ctx_->create_aes_key(k, SealOptions{kPcrs, true});
    ASSERT_TRUE(blob) << blob.error().describe();
    EXPECT_EQ(ctx_->live_handles(), 0u);
    auto key = ctx_->load_aes_key(*blob, kPcrs);
    ASSERT_TRUE(key) << key.error().describe();
    EXPECT_EQ(ctx_->live_handles(), 2u);
    for (std::size_t n : {1u, 5u, 1u, 5u}) {  // repeated: the policy session is re-satisfied each time
      auto blocks = sample_blocks(n, k[0]);
      auto before = ctx_->stats();
      auto out = key->encrypt_ecb(blocks);
      ASSERT_TRUE(out) << out.error().describe();
      EXPECT_EQ(*out, openssl_aes128_ecb(k, blocks)) << n << " blocks";
      auto after = ctx_->stats();
      EXPECT_EQ(after.encrypt_decrypt - before.encrypt_decrypt, 1u);
      EXPECT_LE(after.commands - before.commands, 3u) << "PolicyPCR + EncryptDecrypt2 (+ one capability query)";
    }
    auto moved = std::move(*key);  // ownership moves; the handles stay loaded once
    EXPECT_EQ(ctx_->live_handles(), 2u);
    ASSERT_TRUE(moved.encrypt_ecb(sample_blocks(1, 0)));
  }
  EXPECT_EQ(ctx_->live_handles(), 0u);
}

TEST_F(TpmTest, SplitsARequestLargerThanTheTpmInputBuffer) {
  Bytes k = ts35208_keys().front();
  auto blob = ctx_->create_aes_key(k, SealOptions{kPcrs, true});
  ASSERT_TRUE(blob);
  auto key = ctx_->load_aes_key(*blob, kPcrs);
  ASSERT_TRUE(key);
  auto blocks = sample_blocks(100, 3);  // 1600 bytes; swtpm takes 1024 per command
  auto before = ctx_->stats().encrypt_decrypt;
  auto out = key->encrypt_ecb(blocks);
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out, openssl_aes128_ecb(k, blocks));
  EXPECT_EQ(ctx_->stats().encrypt_decrypt - before, 2u);
  auto none = key->encrypt_ecb({});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(TpmTest, AesKeyRefusesToEncryptAfterASelectedPcrChanged) {
  Bytes k = ts35208_keys().front();
  auto blob = ctx_->create_aes_key(k, SealOptions{kPcrs, true});
  ASSERT_TRUE(blob);
  {
    auto key = ctx_->load_aes_key(*blob, kPcrs);
    ASSERT_TRUE(key);
    ASSERT_TRUE(key->encrypt_ecb(sample_blocks(1, 0)));
    extend(7);
    auto out = key->encrypt_ecb(sample_blocks(1, 0));
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().code, Code::PlatformStateChanged);
    EXPECT_EQ(ctx_->live_handles(), 2u);
  }
  EXPECT_EQ(ctx_->live_handles(), 0u);
  auto key = ctx_->load_aes_key(*blob, kPcrs);  // loading needs no policy; using it does
  ASSERT_TRUE(key);
  EXPECT_EQ(key->encrypt_ecb(sample_blocks(1, 0)).error().code, Code::PlatformStateChanged);
}

TEST_F(TpmTest, AesKeyRecoversItsPolicySessionAfterAFailedUse) {
  Bytes k = ts35208_keys().back();
  auto blob = ctx_->create_aes_key(k, SealOptions{kPcrs, true});
  ASSERT_TRUE(blob);
  auto key = ctx_->load_aes_key(*blob, kPcrs);
  ASSERT_TRUE(key);
  // The TPM saw PolicyPCR but not the command: the session still holds that PolicyPCR.
  seam::inject_response(*ctx_, {seam::kRcPolicyFailS1, 1, seam::kCcEncryptDecrypt2});
  EXPECT_EQ(key->encrypt_ecb(sample_blocks(2, 1)).error().code, Code::PlatformStateChanged);
  auto out = key->encrypt_ecb(sample_blocks(2, 1));
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out, openssl_aes128_ecb(k, sample_blocks(2, 1)));
  // And the PCR_CHANGED case is redone within the same call.
  seam::inject_response(*ctx_, {seam::kRcPcrChanged, 1, seam::kCcEncryptDecrypt2});
  auto redone = key->encrypt_ecb(sample_blocks(5, 2));
  ASSERT_TRUE(redone) << redone.error().describe();
  EXPECT_EQ(*redone, openssl_aes128_ecb(k, sample_blocks(5, 2)));
}

TEST_F(TpmTest, AesKeyWithoutPcrBindingWorksAfterExtends) {
  Bytes k = ts35208_keys()[1];
  PcrSelection none{"sha256", {}};
  auto blob = ctx_->create_aes_key(k, SealOptions{none, true});
  ASSERT_TRUE(blob) << blob.error().describe();
  extend(7);
  auto key = ctx_->load_aes_key(*blob, none);
  ASSERT_TRUE(key);
  auto out = key->encrypt_ecb(sample_blocks(1, 9));
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out, openssl_aes128_ecb(k, sample_blocks(1, 9)));
}

TEST_F(TpmTest, ReportsAMissingEncryptDecrypt2AsUnsupported) {
  Bytes k = ts35208_keys().front();
  auto blob = ctx_->create_aes_key(k, SealOptions{kPcrs, true});
  ASSERT_TRUE(blob);
  auto key = ctx_->load_aes_key(*blob, kPcrs);
  ASSERT_TRUE(key);
  seam::inject_response(*ctx_, {seam::kRcCommandCode, 1, seam::kCcEncryptDecrypt2});
  auto out = key->encrypt_ecb(sample_blocks(1, 0));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Code::Unsupported);
}

TEST_F(TpmTest, RefusesAnAesKeyOfTheWrongSize) {
  EXPECT_EQ(ctx_->create_aes_key(Bytes(15, 1), SealOptions{kPcrs, true}).error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->create_aes_key(Bytes(32, 1), SealOptions{kPcrs, true}).error().code, Code::InvalidArgument);
}

TEST_F(TpmTest, AesKeyObjectIsBoundToThisTpmAndToEcb) {
  auto blob = ctx_->create_aes_key(Bytes(16, 7), SealOptions{kPcrs, true});
  ASSERT_TRUE(blob);
  ctx_.reset();
  auto path = tpm_.state_dir() / "k.pub";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(blob->public_area.data()), static_cast<std::streamsize>(blob->public_area.size()));
  }
  auto shown = test::run({"tpm2_print", "-t", "TPM2B_PUBLIC", path.string()});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  for (const char* expected : {"fixedtpm", "fixedparent", "adminwithpolicy", "noda", "decrypt", "sign", "ecb"})
    EXPECT_NE(shown.out.find(expected), std::string::npos) << expected << " in\n" << shown.out;
  EXPECT_EQ(shown.out.find("userwithauth"), std::string::npos) << shown.out;
  EXPECT_EQ(shown.out.find("sensitivedataorigin"), std::string::npos) << shown.out;
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
  auto blocks = sample_blocks(5, 0x33);
  auto srk = ctx_->srk_public();
  ASSERT_TRUE(srk);
  auto sealed = ctx_->seal(opc, SealOptions{kPcrs, true});
  ASSERT_TRUE(sealed);
  auto unsealed = ctx_->unseal(*sealed, kPcrs);
  ASSERT_TRUE(unsealed);
  EXPECT_EQ(to_bytes(*unsealed), opc);
  auto k_blob = ctx_->create_aes_key(k, SealOptions{kPcrs, true});
  ASSERT_TRUE(k_blob);
  std::vector<Block> out;
  {
    auto key = ctx_->load_aes_key(*k_blob, kPcrs);
    ASSERT_TRUE(key);
    auto encrypted = key->encrypt_ecb(blocks);
    ASSERT_TRUE(encrypted);
    out = *encrypted;
  }
  EXPECT_EQ(out, openssl_aes128_ecb(k, blocks));
  EXPECT_EQ(ctx_->live_handles(), 0u);
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
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    EXPECT_FALSE(seen(blocks[i].data(), 16)) << "input block " << i << " crossed the bus in the clear";
    EXPECT_FALSE(seen(out[i].data(), 16)) << "output block " << i << " crossed the bus in the clear";
  }
}
