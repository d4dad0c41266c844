#pragma once
// Signed reference policies for semi-autonomous validation (TR 33.812 §6.1.3): the operator signs
// the policy YAML as a JWS (ES256, certificate chain in x5c) that devices verify against the
// operator's policy CA before evaluating it. Also a self-signed P-256 signing certificate for
// demonstrations and tests.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/verifier_tpm.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::op {

struct PolicySigner {
  attestation::EvpPkey key;  // EC P-256 private key
  std::vector<Bytes> x5c;    // DER, leaf first
};

struct PolicySignerFiles {
  std::filesystem::path key;                 // PEM private key
  std::filesystem::path certificate;         // PEM, the key's certificate
  std::vector<std::filesystem::path> chain;  // PEM files of intermediates, leaf's issuer first
};

// Loads a signer. Checks: the key is an EC P-256 private key; the certificate's public key is
// the key's; every chain file holds at least one certificate. Errors are InvalidArgument whose
// message starts with "key:", "certificate:" or "chain:" so a caller can name its option.
[[nodiscard]] Result<PolicySigner> load_policy_signer(const PolicySignerFiles& files);

// Signs a reference policy: checks it parses (attestation::parse_policy, InvalidArgument with
// the policy's own message otherwise), then returns the JWS compact serialization whose payload
// is the YAML bytes unchanged.
[[nodiscard]] Result<std::string> sign_policy(std::string_view policy_yaml, const PolicySigner& signer);

struct SigningCertificateRequest {
  std::string common_name;
  unsigned validity_days = 365;
};
struct SigningCredentials {
  SecureString key_pem;  // PKCS#8 PEM private key
  std::string certificate_pem;
};
// A fresh EC P-256 key and a self-signed certificate for it: subject and issuer CN=common_name,
// random 128-bit serial, valid from a minute ago for validity_days, basicConstraints CA:FALSE,
// keyUsage digitalSignature (both critical), subjectKeyIdentifier. It serves as its own trust
// anchor: verifiers put the certificate itself in their JWS trust bundle.
[[nodiscard]] Result<SigningCredentials> make_policy_signing_certificate(const SigningCertificateRequest& request);

}  // namespace mcimd::op
