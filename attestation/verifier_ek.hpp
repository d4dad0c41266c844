#pragma once
// Endorsement key certificates: the TPM manufacturer's CA vouches that an EK lives in a genuine
// TPM. The verifier trusts a configured bundle of manufacturer CA certificates (PEM).
#include <openssl/x509.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::attestation {

// Trust anchors (and the intermediates of manufacturer chains: every certificate in the bundle
// is trusted as given). Cheap to copy.
class CaBundle {
 public:
  // Reads every certificate of each PEM file; a file with none, or an unreadable one, is an
  // error naming it.
  [[nodiscard]] static Result<CaBundle> load(const std::vector<std::filesystem::path>& pem_files);
  [[nodiscard]] static Result<CaBundle> from_pem(std::string_view pem);
  std::size_t size() const { return count_; }
  X509_STORE* store() const { return store_.get(); }

 private:
  std::shared_ptr<X509_STORE> store_;
  std::size_t count_ = 0;
};

// Critical extensions an EK certificate may carry that OpenSSL does not process itself
// (TCG EK Credential Profile 2.x §3.2): subjectDirectoryAttributes (2.5.29.9, TPM specification
// and security assertions), plus subjectAltName (2.5.29.17, the TPM manufacturer/model/version
// directoryName) and certificatePolicies (2.5.29.32), which OpenSSL knows but some builds refuse
// when critical. Anything else critical and unknown fails the chain.
inline constexpr const char* kEkProfileCriticalOids[] = {"2.5.29.9", "2.5.29.17", "2.5.29.32"};

// Checks an EK certificate (DER):
//   - it parses, and chains to a certificate of the bundle (X509_verify_cert, validity times
//     included); unknown critical extensions are accepted only if listed in
//     kEkProfileCriticalOids — a verify callback rather than X509_V_FLAG_IGNORE_CRITICAL, so an
//     unexpected critical extension still fails;
//   - when ek_public (marshaled TPM2B_PUBLIC) is given, the certificate's key equals it.
[[nodiscard]] Status verify_ek_certificate(std::span<const uint8_t> der, const CaBundle& cas,
                                           std::optional<std::span<const uint8_t>> ek_public = std::nullopt);

}  // namespace mcimd::attestation
