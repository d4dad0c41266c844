#include "operator/policy_signing.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attestation/jws.hpp"
#include "attestation/policy.hpp"
#include "common/c_handle.hpp"
#include "common/file.hpp"

namespace mcimd::op {

namespace {

using Bio = CHandle<BIO, BIO_free>;
using X509Ptr = CHandle<X509, X509_free>;
using X509Ext = CHandle<X509_EXTENSION, X509_EXTENSION_free>;
using BigNum = CHandle<BIGNUM, BN_free>;

// PEM files are small; a larger one is not a key or a certificate chain.
constexpr std::size_t kMaxPemSize = 1u << 20;
// RFC 5280 §4.1.2.2: serial numbers up to 20 octets; 128 random bits leave room for the sign.
constexpr int kSerialBits = 128;

Bio memory_bio(std::string_view text) { return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))); }

Result<Bytes> to_der(X509* cert) {
  const int len = i2d_X509(cert, nullptr);
  if (len <= 0) return fail(Code::Internal, "i2d_X509: " + attestation::openssl_error());
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  i2d_X509(cert, &p);
  return der;
}

// Every certificate of a PEM text, in order.
Result<std::vector<X509Ptr>> read_certificates(std::string_view pem, const std::string& what) {
  Bio bio = memory_bio(pem);
  std::vector<X509Ptr> out;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(cert);
  ERR_clear_error();  // the loop ends on "no start line"
  if (out.empty()) return fail(Code::InvalidArgument, what + " holds no PEM certificate");
  return out;
}

Status add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return fail(Code::Internal, std::string("certificate extension ") + value + ": " + attestation::openssl_error());
  return {};
}

}  // namespace

Result<PolicySigner> load_policy_signer(const PolicySignerFiles& files) {
  PolicySigner out;
  {
    auto pem = read_text_file(files.key, kMaxPemSize);
    if (!pem) return fail(Code::InvalidArgument, "key: " + pem.error().message);
    Bio bio = memory_bio(*pem);
    out.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    wipe(pem->data(), pem->size());  // no copy of the private key stays behind in the heap
    if (!out.key) {
      ERR_clear_error();
      return fail(Code::InvalidArgument, "key: " + files.key.string() + " holds no PEM private key");
    }
    if (!attestation::is_p256(out.key.get()))
      return fail(Code::InvalidArgument, "key: " + files.key.string() + " is not an EC P-256 key (ES256)");
  }

  auto cert_pem = read_text_file(files.certificate, kMaxPemSize);
  if (!cert_pem) return fail(Code::InvalidArgument, "certificate: " + cert_pem.error().message);
  auto certs = read_certificates(*cert_pem, "certificate: " + files.certificate.string());
  if (!certs) return tl::unexpected(std::move(certs).error());
  X509* leaf = certs->front().get();
  if (X509_check_private_key(leaf, out.key.get()) != 1) {
    ERR_clear_error();
    return fail(Code::InvalidArgument,
                "certificate: " + files.certificate.string() + " is not the certificate of " + files.key.string());
  }
  // A certificate file may carry its chain after the leaf, as many CAs deliver it.
  for (auto& cert : *certs) out.x5c.push_back(MCIMD_TRY(to_der(cert.get())));

  for (const auto& path : files.chain) {
    auto pem = read_text_file(path, kMaxPemSize);
    if (!pem) return fail(Code::InvalidArgument, "chain: " + pem.error().message);
    auto chain = read_certificates(*pem, "chain: " + path.string());
    if (!chain) return tl::unexpected(std::move(chain).error());
    for (auto& cert : *chain) out.x5c.push_back(MCIMD_TRY(to_der(cert.get())));
  }
  return out;
}

Result<std::string> sign_policy(std::string_view policy_yaml, const PolicySigner& signer) {
  MCIMD_CHECK(attestation::parse_policy(policy_yaml));
  return attestation::jws_sign(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(policy_yaml.data()), policy_yaml.size()),
      signer.key.get(), signer.x5c);
}

Result<SigningCredentials> make_policy_signing_certificate(const SigningCertificateRequest& request) {
  if (request.common_name.empty()) return fail(Code::InvalidArgument, "the subject common name is empty");
  if (request.validity_days == 0) return fail(Code::InvalidArgument, "the validity is zero days");
  attestation::EvpPkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return fail(Code::Internal, "EC P-256 key generation: " + attestation::openssl_error());

  X509Ptr cert(X509_new());
  if (!cert) return fail(Code::Internal, "X509_new: " + attestation::openssl_error());
  X509_set_version(cert.get(), X509_VERSION_3);
  BigNum serial(BN_new());
  if (!serial || BN_rand(serial.get(), kSerialBits, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())))
    return fail(Code::Internal, "certificate serial: " + attestation::openssl_error());
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(request.common_name.c_str()), -1, -1, 0) != 1) {
    ERR_clear_error();
    return fail(Code::InvalidArgument, "the subject common name is not a valid CN (at most 64 characters)");
  }
  X509_set_issuer_name(cert.get(), name);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);  // tolerate a verifier's clock a little behind
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(request.validity_days), 0, nullptr);
  X509_set_pubkey(cert.get(), key.get());
  MCIMD_CHECK(add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  MCIMD_CHECK(add_extension(cert.get(), NID_key_usage, "critical,digitalSignature"));
  MCIMD_CHECK(add_extension(cert.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0)
    return fail(Code::Internal, "X509_sign: " + attestation::openssl_error());

  SigningCredentials out;
  Bio key_bio(BIO_new(BIO_s_secmem()));
  Bio cert_bio(BIO_new(BIO_s_mem()));
  if (!key_bio || !cert_bio || PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1)
    return fail(Code::Internal, "PEM encoding: " + attestation::openssl_error());
  char* data = nullptr;
  long len = BIO_get_mem_data(key_bio.get(), &data);
  out.key_pem.assign(data, static_cast<std::size_t>(len));
  len = BIO_get_mem_data(cert_bio.get(), &data);
  out.certificate_pem.assign(data, static_cast<std::size_t>(len));
  return out;
}

}  // namespace mcimd::op
