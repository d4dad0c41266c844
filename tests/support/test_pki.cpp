#include "tests/support/test_pki.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <stdexcept>

namespace mcimd::test {

namespace {

using Bio = CHandle<BIO, BIO_free>;
using Extension = CHandle<X509_EXTENSION, X509_EXTENSION_free>;

[[noreturn]] void fail_openssl(const std::string& what) {
  char buf[256] = "no OpenSSL error queued";
  if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  throw std::runtime_error("test PKI: " + what + ": " + buf);
}

EvpPkey p256_key() {
  EvpPkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) fail_openssl("P-256 key generation");
  return key;
}

std::string purpose_text(const std::vector<KeyPurpose>& purposes) {
  std::string out;
  for (KeyPurpose p : purposes) {
    if (!out.empty()) out += ",";
    switch (p) {
      case KeyPurpose::DocumentSigning: out += "1.3.6.1.5.5.7.3.36"; break;  // RFC 9336 id-kp-documentSigning
      case KeyPurpose::ServerAuth: out += "serverAuth"; break;
      case KeyPurpose::ClientAuth: out += "clientAuth"; break;
    }
  }
  return out;
}

// One extension in OpenSSL configuration syntax; `issuer` for the authority key identifier.
void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Extension ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) fail_openssl("extension " + value);
}

struct Subject {
  std::string common_name;
  EVP_PKEY* key;
  bool ca;
  std::chrono::seconds not_before, not_after;
};

// A certificate for `subject` with the extensions every certificate here has, issued by `issuer`
// (self-issued where null), to be signed once the caller has added its own extensions.
X509Ptr make_certificate(const Subject& subject, X509* issuer) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) fail_openssl("X509_new");
  // RFC 5280 §4.1.2.2: positive, at most 20 octets; random so that two PKIs never collide.
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) fail_openssl("RAND_bytes");
  serial[0] &= 0x7f;
  CHandle<BIGNUM, BN_free> bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()))) fail_openssl("serial");
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(subject.common_name.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(subject.not_before.count())) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(subject.not_after.count())) ||
      X509_set_pubkey(cert.get(), subject.key) != 1)
    fail_openssl("validity or public key");
  add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer) add_extension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (subject.ca) {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
  }
  return cert;
}

void sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) fail_openssl("X509_sign");
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

void write_text(const std::filesystem::path& path, const std::string& text, std::filesystem::perms perms) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("test PKI: cannot write " + path.string());
  }
  std::filesystem::permissions(path, perms);
}

constexpr auto kPublicFile = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                             std::filesystem::perms::group_read | std::filesystem::perms::others_read;
constexpr auto kPrivateFile = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;

}  // namespace

Bytes certificate_der(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) fail_openssl("i2d_X509");
  Bytes out(static_cast<std::size_t>(len));
  unsigned char* p = out.data();
  i2d_X509(cert, &p);
  return out;
}

std::string certificate_pem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) fail_openssl("PEM_write_bio_X509");
  return bio_text(bio.get());
}

// --- Credential ------------------------------------------------------------------------------------
Bytes Credential::der() const { return certificate_der(cert.get()); }

std::string Credential::cert_pem() const { return certificate_pem(cert.get()); }

std::string Credential::chain_pem() const {
  std::string out;
  for (const Bytes& der : chain_der) {
    const unsigned char* p = der.data();
    X509Ptr c(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!c) fail_openssl("d2i_X509");
    out += certificate_pem(c.get());
  }
  return out;
}

std::string Credential::key_pem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    fail_openssl("PEM_write_bio_PrivateKey");
  return bio_text(bio.get());
}

Credential::Files Credential::write(const std::filesystem::path& dir, std::string_view stem) const {
  Files f{dir / (std::string(stem) + ".crt"), dir / (std::string(stem) + "-chain.crt"),
          dir / (std::string(stem) + ".key")};
  write_text(f.cert, cert_pem(), kPublicFile);
  write_text(f.chain, chain_pem(), kPublicFile);
  write_text(f.key, key_pem(), kPrivateFile);
  return f;
}

// --- TestPki ---------------------------------------------------------------------------------------
TestPki::TestPki(PkiOptions options) : options_(std::move(options)), root_key_(p256_key()) {
  root_ = make_certificate({options_.name + " root CA", root_key_.get(), true, -std::chrono::hours{24},
                            options_.not_after},
                           nullptr);
  sign(root_.get(), root_key_.get());
  if (!options_.intermediate) return;
  intermediate_key_ = p256_key();
  intermediate_ = make_certificate({options_.name + " intermediate CA", intermediate_key_.get(), true,
                                    -std::chrono::hours{24}, options_.not_after},
                                   root_.get());
  if (!options_.intermediate_purposes.empty())
    add_extension(intermediate_.get(), root_.get(), NID_ext_key_usage, purpose_text(options_.intermediate_purposes));
  sign(intermediate_.get(), root_key_.get());
}

TestPki::TestPki(std::string name, bool intermediate) : TestPki([&] {
  PkiOptions o;
  o.name = std::move(name);
  o.intermediate = intermediate;
  return o;
}()) {}

Credential TestPki::issue(const CertificateOptions& o) const {
  Credential c;
  c.key = p256_key();
  c.cert = make_certificate({o.common_name, c.key.get(), false, o.not_before, o.not_after}, issuer());
  if (o.key_usage) add_extension(c.cert.get(), issuer(), NID_key_usage, *o.key_usage);
  if (!o.purposes.empty()) add_extension(c.cert.get(), issuer(), NID_ext_key_usage, purpose_text(o.purposes));
  std::string san;
  for (const auto& dns : o.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
  for (const auto& ip : o.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) add_extension(c.cert.get(), issuer(), NID_subject_alt_name, san);
  sign(c.cert.get(), issuer_key());
  c.chain_der.push_back(certificate_der(c.cert.get()));
  if (intermediate_) c.chain_der.push_back(certificate_der(intermediate_.get()));
  return c;
}

Credential TestPki::document_signer(std::string common_name) const {
  CertificateOptions o;
  o.common_name = std::move(common_name);
  return issue(o);
}

Credential TestPki::tls_server(std::string common_name) const {
  CertificateOptions o;
  o.common_name = std::move(common_name);
  o.purposes = {KeyPurpose::ServerAuth};
  o.dns_names = {"localhost"};
  o.ip_addresses = {"127.0.0.1", "::1"};
  return issue(o);
}

Credential TestPki::tls_client(std::string common_name) const {
  CertificateOptions o;
  o.common_name = std::move(common_name);
  o.purposes = {KeyPurpose::ClientAuth};
  return issue(o);
}

Bytes TestPki::root_der() const { return certificate_der(root_.get()); }

std::string TestPki::root_pem() const { return certificate_pem(root_.get()); }

std::filesystem::path TestPki::write_root(const std::filesystem::path& dir, std::string_view stem) const {
  auto path = dir / (std::string(stem) + ".crt");
  write_text(path, root_pem(), kPublicFile);
  return path;
}

}  // namespace mcimd::test
