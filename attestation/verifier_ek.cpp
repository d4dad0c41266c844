#include "attestation/verifier_ek.hpp"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "attestation/verifier_tpm.hpp"
#include "common/c_handle.hpp"
#include "common/file.hpp"

namespace mcimd::attestation {

namespace {

using X509Ptr = CHandle<X509, X509_free>;
using StoreCtx = CHandle<X509_STORE_CTX, X509_STORE_CTX_free>;
using Bio = CHandle<BIO, BIO_free>;

bool allowed_critical(const X509_EXTENSION* ext) {
  char oid[80];
  if (OBJ_obj2txt(oid, sizeof oid, X509_EXTENSION_get_object(const_cast<X509_EXTENSION*>(ext)), 1) <= 0) return false;
  for (const char* ok : kEkProfileCriticalOids)
    if (std::strcmp(oid, ok) == 0) return true;
  return false;
}

// Accepts X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION only when every critical extension OpenSSL
// does not support is one of the EK profile's.
int verify_callback(int ok, X509_STORE_CTX* ctx) {
  if (ok || X509_STORE_CTX_get_error(ctx) != X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION) return ok;
  X509* cert = X509_STORE_CTX_get_current_cert(ctx);
  if (!cert) return 0;
  for (int i = 0; i < X509_get_ext_count(cert); ++i) {
    X509_EXTENSION* ext = X509_get_ext(cert, i);
    if (X509_EXTENSION_get_critical(ext) && !X509_supported_extension(ext) && !allowed_critical(ext)) return 0;
  }
  X509_STORE_CTX_set_error(ctx, X509_V_OK);
  return 1;
}

Result<std::size_t> add_pem(X509_STORE* store, std::string_view pem, const std::string& what) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return fail(Code::Internal, "BIO_new_mem_buf: " + openssl_error());
  std::size_t n = 0;
  while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509Ptr cert(raw);
    if (X509_STORE_add_cert(store, cert.get()) != 1) return fail(Code::ConfigError, what + ": " + openssl_error());
    ++n;
  }
  ERR_clear_error();  // the read loop ends on a "no start line" error
  if (n == 0) return fail(Code::ConfigError, what + ": no PEM certificate");
  return n;
}

std::shared_ptr<X509_STORE> new_store() { return {X509_STORE_new(), X509_STORE_free}; }

}  // namespace

Result<CaBundle> CaBundle::load(const std::vector<std::filesystem::path>& pem_files) {
  CaBundle b;
  b.store_ = new_store();
  if (!b.store_) return fail(Code::Internal, "X509_STORE_new: " + openssl_error());
  for (const auto& path : pem_files) {
    auto text = read_text_file(path);
    if (!text) return fail(Code::ConfigError, path.string() + ": " + text.error().message);
    b.count_ += MCIMD_TRY(add_pem(b.store_.get(), *text, path.string()));
  }
  if (b.count_ == 0) return fail(Code::ConfigError, "EK CA bundle: no certificate configured");
  return b;
}

Result<CaBundle> CaBundle::from_pem(std::string_view pem) {
  CaBundle b;
  b.store_ = new_store();
  if (!b.store_) return fail(Code::Internal, "X509_STORE_new: " + openssl_error());
  b.count_ = MCIMD_TRY(add_pem(b.store_.get(), pem, "EK CA bundle"));
  return b;
}

Status verify_ek_certificate(std::span<const uint8_t> der, const CaBundle& cas,
                             std::optional<std::span<const uint8_t>> ek_public) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || p != der.data() + der.size()) {
    ERR_clear_error();
    return fail(Code::InvalidArgument, "EK certificate is not a DER X.509 certificate");
  }
  if (!cas.store()) return fail(Code::ConfigError, "no EK CA bundle configured");
  StoreCtx ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), cas.store(), cert.get(), nullptr) != 1)
    return fail(Code::Internal, "X509_STORE_CTX_init: " + openssl_error());
  X509_STORE_CTX_set_verify_cb(ctx.get(), verify_callback);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return fail(Code::NotAuthorized, std::string("EK certificate chain: ") + X509_verify_cert_error_string(err));
  }
  if (ek_public) {
    TpmPublic ek = MCIMD_TRY(parse_tpm_public(*ek_public));
    EVP_PKEY* cert_key = X509_get0_pubkey(cert.get());
    if (!cert_key || EVP_PKEY_eq(cert_key, ek.key.get()) != 1) {
      ERR_clear_error();
      return fail(Code::InvalidArgument, "EK certificate is for another key than the EK public");
    }
  }
  return {};
}

}  // namespace mcimd::attestation
