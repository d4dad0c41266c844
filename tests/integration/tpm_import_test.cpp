// MCIM secrets as an operator packages them (attestation/duplication.hpp), imported into a private
// swtpm with Context::import_object and used under a signed PCR policy; the same blobs through
// tpm2-tools; refusals of blobs for another TPM, altered blobs and objects mcimd would not use;
// and the SRK's certification as the operator verifies it.
#include <gtest/gtest.h>
#include <tss2/tss2_mu.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "aka/block_cipher.hpp"
#include "attestation/duplication.hpp"
#include "attestation/verifier_tpm.hpp"
#include "protocol/quote_domain.hpp"
#include "tests/support/policy_authority.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tpm_fixture.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;
using namespace mcimd::tpm;

namespace {

using Block = aka::Block;

// TS 35.208 test set 1: K and OPc.
const Bytes kK = {0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc};
const Bytes kOpc = {0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf};
const std::vector<unsigned> kBound = {7};  // the PCR the test policies approve

ImportBlob to_tpm(const protocol::ImportBlob& b) { return ImportBlob{b.public_area, b.duplicate, b.seed}; }
Bytes to_bytes(const SecureBytes& s) { return Bytes(s.begin(), s.end()); }

std::vector<Block> sample_blocks() {
  std::vector<Block> blocks(3);
  for (std::size_t i = 0; i < blocks.size(); ++i)
    for (std::size_t j = 0; j < 16; ++j) blocks[i][j] = static_cast<uint8_t>(0x5A + i * 31 + j * 7);
  return blocks;
}

// The same blocks encrypted with K by OpenSSL (aka's software AES, Milenage's network side).
std::vector<Block> openssl_aes128_ecb(const Bytes& key, const std::vector<Block>& blocks) {
  auto aes = aka::OpenSslAes::create(key);
  auto out = aes ? aes->encrypt(blocks) : Result<std::vector<Block>>(tl::unexpected(aes.error()));
  if (!out) {
    ADD_FAILURE() << out.error().describe();
    return {};
  }
  return *out;
}

void write_file(const std::filesystem::path& path, const Bytes& data) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data.data()),
                                              static_cast<std::streamsize>(data.size()));
}
Bytes read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The public area with `edit` applied, marshaled again.
Bytes edited_public(const Bytes& public_area, const std::function<void(TPMT_PUBLIC&)>& edit) {
  TPM2B_PUBLIC pub{};
  std::size_t offset = 0;
  EXPECT_EQ(Tss2_MU_TPM2B_PUBLIC_Unmarshal(public_area.data(), public_area.size(), &offset, &pub), TSS2_RC_SUCCESS);
  edit(pub.publicArea);
  Bytes out(sizeof(TPM2B_PUBLIC));
  offset = 0;
  EXPECT_EQ(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, out.data(), out.size(), &offset), TSS2_RC_SUCCESS);
  out.resize(offset);
  return out;
}

// Creates a primary RSA-2048 storage key from the SRK template in the owner hierarchy and persists
// it at 0x81000001 with tpm2-tools, so that a Context opened afterwards uses an RSA SRK.
void provision_rsa_srk(const test::Swtpm& tpm, const std::filesystem::path& dir) {
  const std::map<std::string, std::string> env = {{"TPM2TOOLS_TCTI", tpm.tcti()}};
  const auto ctx = (dir / "rsa-srk.ctx").string();
  auto created = test::run({"tpm2_createprimary", "-C", "o", "-G", "rsa2048:null:aes128cfb", "-g", "sha256", "-a",
                            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt", "-c", ctx},
                           env);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  auto persisted = test::run({"tpm2_evictcontrol", "-C", "o", "-c", ctx, "0x81000001"}, env);
  ASSERT_EQ(persisted.exit_code, 0) << persisted.err;
  auto flushed = test::run({"tpm2_flushcontext", "-t"}, env);
  ASSERT_EQ(flushed.exit_code, 0) << flushed.err;
}

class TpmImportTest : public test::TpmContextTest {
 protected:
  void SetUp() override {
    TpmContextTest::SetUp();
    auto srk = ctx_->srk_public();
    ASSERT_TRUE(srk) << srk.error().describe();
    srk_public_ = *srk;
    policy_ = approve_current(*ctx_);
  }
  ApprovedPolicy approve_current(Context& tpm) {
    return test::approve(tpm, authority_.authority(), authority_.sign_current(tpm, kBound));
  }
  protocol::ImportBlob k_for(const Bytes& srk_public) {
    auto blob = attestation::make_aes_key_import(srk_public, kK, authority_.auth_policy());
    EXPECT_TRUE(blob) << blob.error().describe();
    return blob ? *blob : protocol::ImportBlob{};
  }
  protocol::ImportBlob opc_for(const Bytes& srk_public) {
    auto blob = attestation::make_sealed_import(srk_public, kOpc, authority_.auth_policy());
    EXPECT_TRUE(blob) << blob.error().describe();
    return blob ? *blob : protocol::ImportBlob{};
  }
  // K and OPc imported into `tpm` and used there: encryption as OpenSSL's, the data unsealed.
  void expect_imported_objects_work(Context& tpm, const Bytes& srk_public, const ApprovedPolicy& policy) {
    auto k = tpm.import_object(to_tpm(k_for(srk_public)));
    ASSERT_TRUE(k) << k.error().describe();
    auto key = tpm.load_aes_key(*k);
    ASSERT_TRUE(key) << key.error().describe();
    auto blocks = sample_blocks();
    auto encrypted = key->encrypt_ecb(blocks, policy);
    ASSERT_TRUE(encrypted) << encrypted.error().describe();
    EXPECT_EQ(*encrypted, openssl_aes128_ecb(kK, blocks));
    auto opc = tpm.import_object(to_tpm(opc_for(srk_public)));
    ASSERT_TRUE(opc) << opc.error().describe();
    auto unsealed = tpm.unseal(*opc, policy);
    ASSERT_TRUE(unsealed) << unsealed.error().describe();
    EXPECT_EQ(to_bytes(*unsealed), kOpc);
  }
  // import_object refuses `blob` with `code` and a message containing `says`, and leaves nothing loaded.
  void expect_refused(const ImportBlob& blob, Code code, const std::string& says) {
    auto r = ctx_->import_object(blob);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, code) << r.error().describe();
    EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
    EXPECT_EQ(ctx_->live_handles(), ctx_->kept_sessions());
    EXPECT_TRUE(ctx_->usable());
  }
  // Refused before the TPM sees anything.
  void expect_refused_unsent(const ImportBlob& blob, const std::string& says) {
    const auto before = ctx_->stats().commands;
    expect_refused(blob, Code::InvalidArgument, says);
    EXPECT_EQ(ctx_->stats().commands, before) << says;
  }

  test::TestAuthority authority_;
  ApprovedPolicy policy_;
  Bytes srk_public_;
};

}  // namespace

// --- the objects work, with the TPM's own policy model ----------------------------------------------
TEST_F(TpmImportTest, ImportsKAsAnAesKeyThatEncryptsLikeOpenSsl) {
  const auto before = ctx_->stats().commands;
  auto k = ctx_->import_object(to_tpm(k_for(srk_public_)));
  ASSERT_TRUE(k) << k.error().describe();
  EXPECT_EQ(ctx_->stats().commands - before, 1u) << "TPM2_Import alone";
  EXPECT_EQ(ctx_->live_handles(), ctx_->kept_sessions()) << "TPM2_Import loads nothing";

  auto key = ctx_->load_aes_key(*k);
  ASSERT_TRUE(key) << key.error().describe();
  auto blocks = sample_blocks();
  auto encrypted = key->encrypt_ecb(blocks, policy_);
  ASSERT_TRUE(encrypted) << encrypted.error().describe();
  EXPECT_EQ(*encrypted, openssl_aes128_ecb(kK, blocks));
}

TEST_F(TpmImportTest, ImportedKIsTheKindOfKeyCreateAesKeyMakesLessFixedTpm) {
  auto imported = ctx_->import_object(to_tpm(k_for(srk_public_)));
  auto created = ctx_->create_aes_key(kK, authority_.seal_options());
  ASSERT_TRUE(imported && created);
  auto a = describe_public(imported->public_area);
  auto b = describe_public(created->public_area);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->kind, PublicInfo::Kind::AesKey);
  EXPECT_EQ(a->kind, b->kind);
  EXPECT_FALSE(a->fixed_tpm);  // TPM2_Import takes only objects with fixedTPM and fixedParent clear
  EXPECT_FALSE(a->fixed_parent);
  EXPECT_TRUE(b->fixed_tpm);
  for (auto field : {&PublicInfo::sensitive_data_origin, &PublicInfo::user_with_auth, &PublicInfo::admin_with_policy,
                     &PublicInfo::no_da, &PublicInfo::decrypt, &PublicInfo::sign_encrypt})
    EXPECT_EQ(a.value().*field, b.value().*field);
  EXPECT_EQ(a->auth_policy, b->auth_policy);
  // Both encrypt the same, one loaded at a time (swtpm has three object slots).
  auto encrypt_with = [&](const KeyBlob& blob) -> std::vector<Block> {
    auto key = ctx_->load_aes_key(blob);
    if (!key) {
      ADD_FAILURE() << key.error().describe();
      return {};
    }
    auto encrypted = key->encrypt_ecb(sample_blocks(), policy_);
    if (!encrypted) {
      ADD_FAILURE() << encrypted.error().describe();
      return {};
    }
    return *encrypted;
  };
  EXPECT_EQ(encrypt_with(*imported), encrypt_with(*created));
  EXPECT_EQ(encrypt_with(*imported), openssl_aes128_ecb(kK, sample_blocks()));
}

TEST_F(TpmImportTest, ImportsOpcAsSealedDataThatUnseals) {
  const auto before = ctx_->stats().commands;
  auto opc = ctx_->import_object(to_tpm(opc_for(srk_public_)));
  ASSERT_TRUE(opc) << opc.error().describe();
  EXPECT_EQ(ctx_->stats().commands - before, 1u);
  auto unsealed = ctx_->unseal(*opc, policy_);
  ASSERT_TRUE(unsealed) << unsealed.error().describe();
  EXPECT_EQ(to_bytes(*unsealed), kOpc);
}

TEST_F(TpmImportTest, ImportedObjectsNeedTheApprovedPlatformState) {
  auto opc = ctx_->import_object(to_tpm(opc_for(srk_public_)));
  auto k = ctx_->import_object(to_tpm(k_for(srk_public_)));
  ASSERT_TRUE(opc && k);
  extend(7);
  auto unsealed = ctx_->unseal(*opc, policy_);
  ASSERT_FALSE(unsealed);
  EXPECT_EQ(unsealed.error().code, Code::PlatformStateChanged) << unsealed.error().describe();
  auto key = ctx_->load_aes_key(*k);
  ASSERT_TRUE(key);
  auto encrypted = key->encrypt_ecb(sample_blocks(), policy_);
  ASSERT_FALSE(encrypted);
  EXPECT_EQ(encrypted.error().code, Code::PlatformStateChanged) << encrypted.error().describe();
  // A policy the authority signs for the new state opens them again: nothing is re-provisioned.
  auto renewed = approve_current(*ctx_);
  auto again = ctx_->unseal(*opc, renewed);
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(to_bytes(*again), kOpc);
}

TEST_F(TpmImportTest, ImportsUnderAnRsaSrk) {
  test::Swtpm rsa_tpm;
  ASSERT_NO_FATAL_FAILURE(provision_rsa_srk(rsa_tpm, dir_.path()));
  {
    auto opened = Context::open(ContextOptions{rsa_tpm.tcti(), {}});
    ASSERT_TRUE(opened) << opened.error().describe();
    Context& rsa = **opened;
    auto srk = rsa.srk_public();
    ASSERT_TRUE(srk) << srk.error().describe();
    auto parsed = attestation::parse_tpm_public(*srk);
    ASSERT_TRUE(parsed);
    ASSERT_EQ(parsed->type, attestation::alg::kRsa) << "the context uses the RSA SRK at 0x81000001";
    expect_imported_objects_work(rsa, *srk, approve_current(rsa));
    // A blob for the ECC SRK carries a point where an RSA ciphertext belongs; an altered RSA seed
    // no longer decodes (OAEP), which libtpms answers with TPM_RC_FAILURE while it keeps working.
    protocol::ImportBlob altered = k_for(*srk);
    altered.seed[2 + 100] ^= 0x01;
    for (const auto& [what, blob] : {std::pair{"for the ECC SRK", k_for(srk_public_)}, std::pair{"altered", altered}}) {
      SCOPED_TRACE(what);
      auto r = rsa.import_object(to_tpm(blob));
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, Code::TpmMismatch) << r.error().describe();
      EXPECT_NE(r.error().message.find("the seed does not decrypt with this TPM's SRK"), std::string::npos)
          << r.error().message;
    }
    EXPECT_TRUE(rsa.import_object(to_tpm(k_for(*srk)))) << "the TPM still imports";
    EXPECT_EQ(rsa.live_handles(), rsa.kept_sessions());
  }
  auto left = test::run({"tpm2_getcap", "handles-transient"}, {{"TPM2TOOLS_TCTI", rsa_tpm.tcti()}});
  EXPECT_EQ(left.exit_code, 0) << left.err;
  EXPECT_EQ(left.out, "");
}

// --- refusals -----------------------------------------------------------------------------------------
TEST_F(TpmImportTest, RefusesABlobMadeForAnotherTpm) {
  test::Swtpm other_tpm;
  Bytes other_srk;
  {
    auto other = Context::open(ContextOptions{other_tpm.tcti(), {}});
    ASSERT_TRUE(other) << other.error().describe();
    auto srk = (*other)->srk_public();
    ASSERT_TRUE(srk) << srk.error().describe();
    other_srk = *srk;
  }
  ASSERT_NE(other_srk, srk_public_);
  // The seed decrypts to another value here, so the outer HMAC fails.
  expect_refused(to_tpm(k_for(other_srk)), Code::TpmMismatch, "integrity check failed: it was made for another TPM");
  expect_refused(to_tpm(opc_for(other_srk)), Code::TpmMismatch, "integrity check failed: it was made for another TPM");
}

TEST_F(TpmImportTest, RefusesAnyAlteredPart) {
  const protocol::ImportBlob good = k_for(srk_public_);
  // Bytes the TPM alone can tell were changed: the structures still unmarshal and the public area
  // still describes an object mcimd uses.
  struct Alteration {
    const char* what;
    Bytes protocol::ImportBlob::*part;
    std::size_t offset;  // from the end when `from_end`
    bool from_end;
    const char* says;
  };
  constexpr const char* kIntegrity = "the duplicate's integrity check failed";
  constexpr const char* kSeed = "the seed does not decrypt with this TPM's SRK";
  const Alteration alterations[] = {
      // TPM2B_PUBLIC: size, type, nameAlg, attributes, authPolicy (TPM2B), parameters, unique.
      {"the last byte of unique", &protocol::ImportBlob::public_area, 1, true, kIntegrity},
      {"a byte of authPolicy", &protocol::ImportBlob::public_area, 2 + 2 + 2 + 4 + 2 + 5, false, kIntegrity},
      // TPM2B_PRIVATE: size, the outer HMAC (TPM2B_DIGEST), the encrypted sensitive area.
      {"a byte of the outer HMAC", &protocol::ImportBlob::duplicate, 2 + 2 + 3, false, kIntegrity},
      {"the last byte of the encrypted sensitive area", &protocol::ImportBlob::duplicate, 1, true, kIntegrity},
      // TPM2B_ENCRYPTED_SECRET holding a TPMS_ECC_POINT: the point is no longer on the curve.
      {"a byte of the seed's x coordinate", &protocol::ImportBlob::seed, 2 + 2 + 7, false, kSeed},
      {"the last byte of the seed", &protocol::ImportBlob::seed, 1, true, kSeed},
  };
  for (const auto& alteration : alterations) {
    SCOPED_TRACE(alteration.what);
    protocol::ImportBlob blob = good;
    Bytes& part = blob.*alteration.part;
    part[alteration.from_end ? part.size() - alteration.offset : alteration.offset] ^= 0x01;
    expect_refused(to_tpm(blob), Code::TpmMismatch, alteration.says);
  }
  // The unaltered blob still imports: the refusals were for the alterations.
  EXPECT_TRUE(ctx_->import_object(to_tpm(good)));
}

TEST_F(TpmImportTest, RefusesMalformedStructures) {
  const protocol::ImportBlob good = k_for(srk_public_);
  for (auto part : {&protocol::ImportBlob::public_area, &protocol::ImportBlob::duplicate, &protocol::ImportBlob::seed}) {
    protocol::ImportBlob blob = good;
    (blob.*part)[1] ^= 0x01;  // the TPM2B size no longer covers the bytes
    expect_refused_unsent(to_tpm(blob), "Malformed");
    blob = good;
    (blob.*part).push_back(0);
    expect_refused_unsent(to_tpm(blob), "Malformed");
  }
}

TEST_F(TpmImportTest, RefusesAnUnencryptedImport) {
  protocol::ImportBlob blob = k_for(srk_public_);
  blob.seed = {0, 0};
  expect_refused_unsent(to_tpm(blob), "not wrapped for the SRK (empty seed)");
}

TEST_F(TpmImportTest, RefusesObjectsMcimdWouldNotUse) {
  const protocol::ImportBlob k = k_for(srk_public_);
  const protocol::ImportBlob opc = opc_for(srk_public_);
  struct Edit {
    const protocol::ImportBlob* blob;
    std::function<void(TPMT_PUBLIC&)> edit;
    const char* says;
  };
  const Edit edits[] = {
      {&k, [](TPMT_PUBLIC& p) { p.objectAttributes |= TPMA_OBJECT_DECRYPT; }, "decrypt is set: the key could decrypt"},
      {&k, [](TPMT_PUBLIC& p) { p.objectAttributes |= TPMA_OBJECT_USERWITHAUTH; }, "userWithAuth is set"},
      {&opc, [](TPMT_PUBLIC& p) { p.objectAttributes |= TPMA_OBJECT_USERWITHAUTH; }, "userWithAuth is set"},
      {&k, [](TPMT_PUBLIC& p) { p.objectAttributes &= ~TPMA_OBJECT_ADMINWITHPOLICY; }, "adminWithPolicy is clear"},
      {&opc, [](TPMT_PUBLIC& p) { p.objectAttributes &= ~TPMA_OBJECT_NODA; }, "noDA is clear"},
      {&k, [](TPMT_PUBLIC& p) { p.objectAttributes &= ~TPMA_OBJECT_SIGN_ENCRYPT; }, "the key could not encrypt"},
      {&k, [](TPMT_PUBLIC& p) { p.parameters.symDetail.sym.mode.aes = TPM2_ALG_CFB; }, "other than AES-128 in ECB"},
      {&k, [](TPMT_PUBLIC& p) { p.objectAttributes |= TPMA_OBJECT_FIXEDTPM; }, "fixedTPM is set"},
      {&opc, [](TPMT_PUBLIC& p) { p.objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT; }, "sign is set on sealed data"},
      {&opc,
       [](TPMT_PUBLIC& p) {
         p.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_HMAC;
         p.parameters.keyedHashDetail.scheme.details.hmac.hashAlg = TPM2_ALG_SHA256;
       },
       "a keyed-hash key"},
      {&opc, [](TPMT_PUBLIC& p) { p.authPolicy.size = 0; }, "authPolicy is not a SHA-256 policy digest"},
      {&opc, [](TPMT_PUBLIC& p) { p.nameAlg = TPM2_ALG_SHA384; }, "nameAlg is not SHA-256"},
  };
  for (const auto& e : edits) {
    SCOPED_TRACE(e.says);
    ImportBlob blob = to_tpm(*e.blob);
    blob.public_area = edited_public(blob.public_area, e.edit);
    expect_refused_unsent(blob, e.says);
  }
}

// --- tpm2-tools reads the same blobs --------------------------------------------------------------------
TEST_F(TpmImportTest, Tpm2ToolsImportsAndLoadsTheBlobs) {
  for (const auto& [name, blob] : {std::pair{"k", k_for(srk_public_)}, std::pair{"opc", opc_for(srk_public_)}}) {
    SCOPED_TRACE(name);
    const auto base = dir_.path() / name;
    write_file(base.string() + ".pub", blob.public_area);
    write_file(base.string() + ".dup", blob.duplicate);
    write_file(base.string() + ".seed", blob.seed);
    auto imported = tools({"tpm2_import", "-C", "0x81000001", "-u", base.string() + ".pub", "-i",
                           base.string() + ".dup", "-s", base.string() + ".seed", "-r", base.string() + ".priv"});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
    auto loaded = tools({"tpm2_load", "-C", "0x81000001", "-u", base.string() + ".pub", "-r", base.string() + ".priv",
                         "-c", base.string() + ".ctx"});
    ASSERT_EQ(loaded.exit_code, 0) << loaded.err;
    // tpm2_load leaves the object loaded (no resource manager to flush it).
    auto flushed = tools({"tpm2_flushcontext", "-t"});
    ASSERT_EQ(flushed.exit_code, 0) << flushed.err;
    // And what tpm2_import made is a blob this library uses.
    KeyBlob from_tools{blob.public_area, read_file(base.string() + ".priv")};
    if (std::string(name) == "k") {
      auto key = ctx_->load_aes_key(from_tools);
      ASSERT_TRUE(key) << key.error().describe();
      auto blocks = sample_blocks();
      auto encrypted = key->encrypt_ecb(blocks, policy_);
      ASSERT_TRUE(encrypted) << encrypted.error().describe();
      EXPECT_EQ(*encrypted, openssl_aes128_ecb(kK, blocks));
    } else {
      auto unsealed = ctx_->unseal(from_tools, policy_);
      ASSERT_TRUE(unsealed) << unsealed.error().describe();
      EXPECT_EQ(to_bytes(*unsealed), kOpc);
    }
  }
}

// --- the SRK's certification ------------------------------------------------------------------------------
TEST_F(TpmImportTest, CertifiesTheSrkSoThatTheOperatorAcceptsIt) {
  auto ak = ctx_->create_ak();
  ASSERT_TRUE(ak) << ak.error().describe();
  const Bytes nonces(64, 0x3c);  // operator nonce ‖ device nonce
  const Bytes qualifying = protocol::qualifying_data(protocol::QuoteDomain::SrkCertification, nonces);
  const auto before = ctx_->stats().commands;
  auto certified = ctx_->certify_srk(*ak, qualifying);
  ASSERT_TRUE(certified) << certified.error().describe();
  EXPECT_EQ(ctx_->stats().commands - before, 3u) << "load the AK, certify, flush the AK";
  EXPECT_EQ(ctx_->live_handles(), ctx_->kept_sessions());

  const protocol::Certification certification{certified->message, certified->signature};
  auto verified = attestation::verify_srk_certification(ak->public_area, certification, srk_public_, qualifying);
  ASSERT_TRUE(verified) << verified.error().describe();
  auto clock = ctx_->read_clock();
  ASSERT_TRUE(clock);
  EXPECT_LE(verified->clock, clock->clock);

  // The same certification does not vouch for another TPM's SRK, nor answer other nonces.
  test::Swtpm other_tpm;
  auto other = Context::open(ContextOptions{other_tpm.tcti(), {}});
  ASSERT_TRUE(other);
  auto other_srk = (*other)->srk_public();
  ASSERT_TRUE(other_srk);
  auto wrong_srk = attestation::verify_srk_certification(ak->public_area, certification, *other_srk, qualifying);
  ASSERT_FALSE(wrong_srk);
  EXPECT_EQ(wrong_srk.error().code, Code::WrongDevice) << wrong_srk.error().describe();
  EXPECT_NE(wrong_srk.error().message.find("SRK certification refused: name:"), std::string::npos);
  auto wrong_nonce = attestation::verify_srk_certification(
      ak->public_area, certification, srk_public_,
      protocol::qualifying_data(protocol::QuoteDomain::SrkCertification, Bytes(64, 0x3d)));
  ASSERT_FALSE(wrong_nonce);
  EXPECT_EQ(wrong_nonce.error().code, Code::Replayed) << wrong_nonce.error().describe();
  // One bit of the signature (in its last field, the ECDSA s) flipped.
  protocol::Certification flipped = certification;
  flipped.signature.back() ^= 0x01;
  auto forged = attestation::verify_srk_certification(ak->public_area, flipped, srk_public_, qualifying);
  ASSERT_FALSE(forged);
  EXPECT_EQ(forged.error().code, Code::SignatureInvalid) << forged.error().describe();
}

TEST_F(TpmImportTest, RefusesToCertifyWithOversizedQualifyingData) {
  auto ak = ctx_->create_ak();
  ASSERT_TRUE(ak);
  const auto before = ctx_->stats().commands;
  auto r = ctx_->certify_srk(*ak, Bytes(65, 1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->stats().commands, before);
}
