#pragma once
// A small certificate authority for tests: a root CA, optionally an intermediate below it, and
// end-entity certificates for the purposes mcimd's parties have — document signing (operators'
// package signers, RFC 9336), TLS server and TLS client — all on P-256 keys. Certificates come
// as OpenSSL objects and DER for in-process signing, and as PEM files for processes.
// Failures throw std::runtime_error: a test that cannot build its PKI has nothing to assert.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/c_handle.hpp"

namespace mcimd::test {

using EvpPkey = CHandle<EVP_PKEY, EVP_PKEY_free>;
using X509Ptr = CHandle<X509, X509_free>;

// Extended key usages (RFC 5280 §4.2.1.12, RFC 9336).
enum class KeyPurpose { DocumentSigning, ServerAuth, ClientAuth };

struct CertificateOptions {
  std::string common_name = "mcimd test signer";
  std::vector<KeyPurpose> purposes{KeyPurpose::DocumentSigning};  // empty: no extendedKeyUsage at all
  // keyUsage in OpenSSL configuration syntax; nullopt: no keyUsage extension.
  std::optional<std::string> key_usage = "critical,digitalSignature";
  // Validity window relative to the time of issue.
  std::chrono::seconds not_before = -std::chrono::hours{1};
  std::chrono::seconds not_after = std::chrono::hours{24 * 365};
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries
};

// An issued certificate with its private key and the certificates between it and the root.
struct Credential {
  EvpPkey key;                   // P-256
  X509Ptr cert;
  std::vector<Bytes> chain_der;  // leaf first, then the intermediate if any: a JWS x5c

  EVP_PKEY* pkey() const { return key.get(); }
  Bytes der() const;
  std::string cert_pem() const;
  std::string chain_pem() const;  // leaf and intermediate, as a TLS server presents them
  std::string key_pem() const;    // PKCS #8, unencrypted

  struct Files {
    std::filesystem::path cert, chain, key;
  };
  // Writes <stem>.crt, <stem>-chain.crt and <stem>.key (mode 0600) into dir.
  Files write(const std::filesystem::path& dir, std::string_view stem) const;
};

struct PkiOptions {
  std::string name = "mcimd test";  // the CAs' common names start with it
  bool intermediate = false;
  // extendedKeyUsage on the intermediate CA; empty: none (any purpose below it).
  std::vector<KeyPurpose> intermediate_purposes;
  std::chrono::seconds not_after = std::chrono::hours{24 * 365 * 5};
};

class TestPki {
 public:
  explicit TestPki(PkiOptions options = {});
  explicit TestPki(std::string name, bool intermediate = false);

  // A certificate issued by the intermediate when there is one, else by the root.
  Credential issue(const CertificateOptions& options) const;
  Credential document_signer(std::string common_name = "mcimd test package signer") const;
  // serverAuth, subjectAltName DNS:localhost and IP:127.0.0.1 (and ::1).
  Credential tls_server(std::string common_name = "localhost") const;
  Credential tls_client(std::string common_name = "mcimd test gateway") const;

  X509* root() const { return root_.get(); }
  Bytes root_der() const;
  std::string root_pem() const;
  // Writes <stem>.crt (the root alone: what a party configures as its trust anchor) into dir.
  std::filesystem::path write_root(const std::filesystem::path& dir, std::string_view stem) const;

 private:
  X509* issuer() const { return intermediate_ ? intermediate_.get() : root_.get(); }
  EVP_PKEY* issuer_key() const { return intermediate_ ? intermediate_key_.get() : root_key_.get(); }

  PkiOptions options_;
  EvpPkey root_key_;
  X509Ptr root_;
  EvpPkey intermediate_key_;
  X509Ptr intermediate_;
};

// DER and PEM of any certificate.
Bytes certificate_der(X509* cert);
std::string certificate_pem(X509* cert);

}  // namespace mcimd::test
