// Attestation in the TPM layer against a private swtpm, checked against tpm2-tools: EK publics
// and certificates, the AK, credential activation and quotes.
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include <fstream>
#include <iterator>
#include <string>

#include "common/c_handle.hpp"
#include "common/file.hpp"
#include "protocol/evidence.hpp"
#include "protocol/quote.hpp"
#include "tests/support/process.hpp"
#include "tests/support/swtpm.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/tpm_fixture.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;
using namespace mcimd::tpm;

namespace {

Bytes slurp(const std::filesystem::path& path) {
  auto data = read_file(path);
  EXPECT_TRUE(data) << data.error().describe();
  return data ? *data : Bytes{};
}

void spill(const std::filesystem::path& path, const Bytes& data) {
  ASSERT_TRUE(write_file_atomic(path, data));
}

TPMT_PUBLIC unmarshal_public(const Bytes& data) {
  TPM2B_PUBLIC pub{};
  size_t offset = 0;
  EXPECT_EQ(Tss2_MU_TPM2B_PUBLIC_Unmarshal(data.data(), data.size(), &offset, &pub), TSS2_RC_SUCCESS);
  EXPECT_EQ(offset, data.size());
  return pub.publicArea;
}

// A private swtpm per test, no handle left loaded.
class AttestTest : public test::TpmContextTest {
 protected:
  explicit AttestTest(test::SwtpmOptions options = {}) : TpmContextTest(options) {}

  test::RunResult tools_closed(const std::vector<std::string>& argv) {
    ctx_.reset();
    return tools(argv);
  }

  // tpm2_makecredential -T none writes a header (0xBADCC0DE, version 1), the TPM2B_ID_OBJECT and
  // the TPM2B_ENCRYPTED_SECRET.
  CredentialChallenge make_credential(const Bytes& ek_public, const Bytes& ak_name, const std::string& secret) {
    spill(dir_.path() / "ek.pub", ek_public);
    std::ofstream(dir_.path() / "secret") << secret;
    auto r = test::run({"tpm2_makecredential", "-T", "none", "-e", (dir_.path() / "ek.pub").string(), "-s",
                        (dir_.path() / "secret").string(), "-n", to_hex(ak_name), "-o",
                        (dir_.path() / "cred.out").string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    Bytes file = slurp(dir_.path() / "cred.out");
    EXPECT_GT(file.size(), 12u);
    if (file.size() <= 12) return {};
    std::size_t blob_end = 8 + 2 + ((std::size_t{file[8]} << 8) | file[9]);
    EXPECT_LT(blob_end, file.size());
    return CredentialChallenge{Bytes(file.begin() + 8, file.begin() + static_cast<std::ptrdiff_t>(blob_end)),
                               Bytes(file.begin() + static_cast<std::ptrdiff_t>(blob_end), file.end())};
  }
};

class AttestEk : public AttestTest, public ::testing::WithParamInterface<EkType> {};

const char* tools_alg(EkType type) { return type == EkType::EccP256 ? "ecc" : "rsa"; }

}  // namespace

// --- EK ------------------------------------------------------------------------------------------
TEST_P(AttestEk, PublicEqualsWhatTpm2CreateekWrites) {
  auto ours = ctx_->ek_public(GetParam());
  ASSERT_TRUE(ours) << ours.error().describe();
  EXPECT_EQ(ctx_->live_handles(), 0u);
  // A context file, not "-c -", which would persist the EK at the first free persistent handle.
  auto r = tools_closed({"tpm2_createek", "-c", (dir_.path() / "ek.ctx").string(), "-G", tools_alg(GetParam()), "-u",
                         (dir_.path() / "ek.pub").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(to_hex(*ours), to_hex(slurp(dir_.path() / "ek.pub")));
  ASSERT_EQ(tools({"tpm2_flushcontext", "-t"}).exit_code, 0);
  open();
  auto again = ctx_->ek_public(GetParam());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *ours) << "the EK is derived from the endorsement seed: the same every time";
}

TEST_P(AttestEk, CertificateIsNotFoundOnAnUnprovisionedTpm) {
  auto cert = ctx_->ek_certificate(GetParam());
  ASSERT_FALSE(cert);
  EXPECT_EQ(cert.error().code, Code::NotFound) << cert.error().describe();
}

INSTANTIATE_TEST_SUITE_P(RsaAndEcc, AttestEk, ::testing::Values(EkType::Rsa2048, EkType::EccP256),
                         [](const auto& info) { return info.param == EkType::EccP256 ? "Ecc" : "Rsa"; });

namespace {
class AProvisionedTpm : public AttestTest {
 protected:
  AProvisionedTpm() : AttestTest(test::SwtpmOptions{/*provision_ek_certificates=*/true}) {}
};
}  // namespace

TEST_F(AProvisionedTpm, YieldsTheRsaEkCertificateSignedByTheLocalCaForTheTemplateEk) {
  auto der = ctx_->ek_certificate(EkType::Rsa2048);
  ASSERT_TRUE(der) << der.error().describe();
  auto ek = ctx_->ek_public(EkType::Rsa2048);
  ASSERT_TRUE(ek);

  const uint8_t* p = der->data();
  CHandle<X509, X509_free> cert(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
  ASSERT_TRUE(cert) << "not a DER certificate";
  EXPECT_EQ(p, der->data() + der->size()) << "trailing bytes after the certificate";

  // Signed by swtpm-localca's issuing CA, which chains to its root.
  CHandle<BIO, BIO_free> bio(BIO_new_file(test::Swtpm::local_ca_issuer_certificate().c_str(), "r"));
  ASSERT_TRUE(bio);
  CHandle<X509, X509_free> issuer(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(issuer);
  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(issuer.get())), 1);
  EXPECT_TRUE(std::filesystem::exists(test::Swtpm::local_ca_root_certificate()));

  // The certified key is the EK our template derives (modulus in TPMT_PUBLIC.unique.rsa).
  auto pub = unmarshal_public(*ek);
  BIGNUM* n = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(X509_get0_pubkey(cert.get()), "n", &n), 1);
  Bytes modulus(static_cast<std::size_t>(BN_num_bytes(n)));
  BN_bn2bin(n, modulus.data());
  BN_free(n);
  EXPECT_EQ(modulus, Bytes(pub.unique.rsa.buffer, pub.unique.rsa.buffer + pub.unique.rsa.size));

  // The same bytes tpm2-tools reads from the index.
  auto r = tools_closed({"tpm2_nvread", "0x01c00002", "-C", "o", "-o", (dir_.path() / "ek.der").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(slurp(dir_.path() / "ek.der"), *der);
  open();
}

TEST_F(AProvisionedTpm, HasNoCertificateForTheP256TemplateEk) {
  // swtpm 0.7 certifies a P-384 EK at the high-range index 0x01c00016; L-2's index stays empty.
  auto cert = ctx_->ek_certificate(EkType::EccP256);
  ASSERT_FALSE(cert);
  EXPECT_EQ(cert.error().code, Code::NotFound);
}

// --- AK ------------------------------------------------------------------------------------------
TEST_F(AttestTest, CreatesARestrictedEcdsaP256AttestationKey) {
  auto ak = ctx_->create_ak();
  ASSERT_TRUE(ak) << ak.error().describe();
  EXPECT_EQ(ctx_->live_handles(), 0u);
  auto pub = unmarshal_public(ak->public_area);
  EXPECT_EQ(pub.type, TPM2_ALG_ECC);
  EXPECT_EQ(pub.nameAlg, TPM2_ALG_SHA256);
  EXPECT_EQ(pub.objectAttributes,
            TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA);
  EXPECT_EQ(pub.parameters.eccDetail.curveID, TPM2_ECC_NIST_P256);
  EXPECT_EQ(pub.parameters.eccDetail.scheme.scheme, TPM2_ALG_ECDSA);
  EXPECT_EQ(pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg, TPM2_ALG_SHA256);
  EXPECT_EQ(pub.parameters.eccDetail.symmetric.algorithm, TPM2_ALG_NULL);
  EXPECT_EQ(pub.authPolicy.size, 0);
  {
    auto loaded = ctx_->load_ak(*ak);
    ASSERT_TRUE(loaded) << loaded.error().describe();
    EXPECT_EQ(ctx_->live_handles(), 1u);
  }
  EXPECT_EQ(ctx_->live_handles(), 0u);
}

TEST_F(AttestTest, NamesTheAkAsTpm2ToolsDo) {
  auto ak = ctx_->create_ak();
  ASSERT_TRUE(ak);
  auto name = object_name(ak->public_area);
  ASSERT_TRUE(name) << name.error().describe();
  EXPECT_EQ(name->size(), 34u);
  auto shared = protocol::object_name(ak->public_area);
  ASSERT_TRUE(shared);
  EXPECT_EQ(*shared, *name);
  spill(dir_.path() / "ak.pub", ak->public_area);
  spill(dir_.path() / "ak.priv", ak->private_area);
  auto r = tools_closed({"tpm2_load", "-C", "0x81000001", "-u", (dir_.path() / "ak.pub").string(), "-r",
                         (dir_.path() / "ak.priv").string(), "-n", (dir_.path() / "ak.name").string(), "-c",
                         (dir_.path() / "ak.ctx").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(to_hex(slurp(dir_.path() / "ak.name")), to_hex(*name));
  ASSERT_EQ(tools({"tpm2_flushcontext", "-t"}).exit_code, 0);
}

TEST_F(AttestTest, RefusesAnAkBlobThatIsNoRestrictedSigningKey) {
  auto sealed = ctx_->seal(Bytes(16, 1), SealOptions{Bytes(32, 0), true});
  ASSERT_TRUE(sealed);
  auto loaded = ctx_->load_ak(*sealed);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Code::InvalidArgument);
  auto garbage = ctx_->load_ak(KeyBlob{Bytes{1, 2, 3}, Bytes{4, 5}});
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code, Code::InvalidArgument);
}

// --- credential activation -------------------------------------------------------------------------
TEST_P(AttestEk, ActivatesACredentialMadeByTpm2Makecredential) {
  auto ak = ctx_->create_ak();
  ASSERT_TRUE(ak);
  auto ek = ctx_->ek_public(GetParam());
  ASSERT_TRUE(ek);
  auto name = object_name(ak->public_area);
  ASSERT_TRUE(name);
  const std::string secret = "0123456789abcdef0123456789abcdef";
  auto challenge = make_credential(*ek, *name, secret);
  auto released = ctx_->activate_credential(*ak, GetParam(), challenge);
  ASSERT_TRUE(released) << released.error().describe();
  EXPECT_EQ(std::string(released->begin(), released->end()), secret);
  EXPECT_EQ(ctx_->live_handles(), 0u);
}

TEST_P(AttestEk, RefusesACredentialMadeForAnotherAk) {
  auto ak = ctx_->create_ak();
  auto other = ctx_->create_ak();
  ASSERT_TRUE(ak && other);
  auto ek = ctx_->ek_public(GetParam());
  ASSERT_TRUE(ek);
  auto other_name = object_name(other->public_area);
  ASSERT_TRUE(other_name);
  auto challenge = make_credential(*ek, *other_name, "not for this AK");
  auto released = ctx_->activate_credential(*ak, GetParam(), challenge);
  ASSERT_FALSE(released);
  EXPECT_EQ(released.error().code, Code::InvalidArgument) << released.error().describe();
  EXPECT_TRUE(released.error().has_tss2_rc());
  EXPECT_EQ(ctx_->live_handles(), 0u);
  // The intended AK still activates it.
  auto ok = ctx_->activate_credential(*other, GetParam(), challenge);
  ASSERT_TRUE(ok) << ok.error().describe();
}

TEST_F(AttestTest, RefusesACredentialForTheOtherEkType) {
  auto ak = ctx_->create_ak();
  ASSERT_TRUE(ak);
  auto ek = ctx_->ek_public(EkType::Rsa2048);
  ASSERT_TRUE(ek);
  auto challenge = make_credential(*ek, *object_name(ak->public_area), "for the RSA EK");
  auto released = ctx_->activate_credential(*ak, EkType::EccP256, challenge);
  ASSERT_FALSE(released);
  // Refused by the TPM for the secret's shape, not by a check before it.
  EXPECT_EQ(released.error().code, Code::InvalidArgument) << released.error().describe();
  EXPECT_TRUE(released.error().has_tss2_rc()) << released.error().describe();
  EXPECT_NE(released.error().message.find("not made for this TPM's ECC P-256 EK"), std::string::npos)
      << released.error().describe();
  EXPECT_EQ(ctx_->live_handles(), 0u);
}

TEST_F(AttestTest, RefusesAMalformedChallengeWithoutLoadingAnything) {
  auto ak = ctx_->create_ak();
  ASSERT_TRUE(ak);
  auto released = ctx_->activate_credential(*ak, EkType::EccP256, CredentialChallenge{Bytes{0, 5, 1}, Bytes{}});
  ASSERT_FALSE(released);
  EXPECT_EQ(released.error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->live_handles(), 0u);
}

// --- quotes -----------------------------------------------------------------------------------------
TEST_F(AttestTest, ListsEveryAllocatedBank) {
  auto banks = ctx_->allocated_pcr_banks();
  ASSERT_TRUE(banks) << banks.error().describe();
  // swtpm 0.7 without swtpm_setup allocates all four banks.
  ASSERT_EQ(banks->size(), 4u);
  for (const auto& b : *banks) EXPECT_EQ(b.pcrs.size(), 24u) << b.bank;
  std::vector<unsigned> some{7, 0, 7};
  auto few = ctx_->allocated_pcr_banks(some);
  ASSERT_TRUE(few);
  ASSERT_EQ(few->size(), banks->size());
  for (const auto& b : *few) EXPECT_EQ(b.pcrs, (std::vector<unsigned>{0, 7}));
  std::vector<unsigned> bad{24};
  auto refused = ctx_->allocated_pcr_banks(bad);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::InvalidArgument);
  EXPECT_NE(refused.error().message.find("PCR 24"), std::string::npos) << refused.error().describe();
}

TEST_F(AttestTest, QuotesWithTheNonceAndTheSelectedBanks) {
  auto ak = ctx_->create_ak();
  ASSERT_TRUE(ak);
  ASSERT_TRUE(ctx_->pcr_extend(16, "sha256", Bytes(32, 0x11)));
  Bytes nonce(64, 0xA5);
  std::vector<PcrSelection> sel{{"sha256", {0, 16}}, {"sha1", {3}}};
  auto quote = ctx_->quote(*ak, nonce, sel);
  ASSERT_TRUE(quote) << quote.error().describe();
  EXPECT_EQ(ctx_->live_handles(), 0u);
  auto info = protocol::parse_quote_message(quote->message);
  ASSERT_TRUE(info) << info.error().describe();
  EXPECT_EQ(info->nonce, nonce);
  ASSERT_EQ(info->selection.size(), 2u);
  EXPECT_EQ(info->selection[0], (protocol::QuotedBank{"sha256", {0, 16}}));
  EXPECT_EQ(info->selection[1], (protocol::QuotedBank{"sha1", {3}}));
  EXPECT_EQ(info->qualified_signer.size(), 34u);
  auto hash = protocol::signature_hash(quote->signature);
  ASSERT_TRUE(hash);
  EXPECT_EQ(*hash, "sha256");

  EXPECT_EQ(ctx_->quote(*ak, Bytes(65, 0), sel).error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->quote(*ak, nonce, {}).error().code, Code::InvalidArgument);
  std::vector<PcrSelection> twice{{"sha256", {0}}, {"sha256", {1}}};
  EXPECT_EQ(ctx_->quote(*ak, nonce, twice).error().code, Code::InvalidArgument);
  std::vector<PcrSelection> empty{{"sha256", {}}};
  EXPECT_EQ(ctx_->quote(*ak, nonce, empty).error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->live_handles(), 0u);
}
