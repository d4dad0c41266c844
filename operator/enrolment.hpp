#pragma once
// Device enrolment (TR 33.812 DPF/RO): the operator accepts an EK and an AK only once the device
// proved they share a TPM — TPM2_MakeCredential in software against the EK for the AK's name,
// and the device returns the secret only its TPM could release (TPM2_ActivateCredential).
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "attestation/verifier.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "operator/registry.hpp"
#include "protocol/evidence.hpp"

namespace mcimd::op {

// Secret of a credential challenge: 32 random bytes, within TPM2_MakeCredential's limit for a
// SHA-256 nameAlg EK (Part 3 §12.6: at most the digest size).
inline constexpr std::size_t kCredentialSecretSize = 32;

struct EnrolmentOptions {
  std::optional<attestation::CaBundle> ek_cas;  // when set, a certificate in the request must chain to it
  // An EK without a certificate is refused unless the operator allows it explicitly; the choice
  // is recorded in the device's record and shown whenever the device is verified.
  bool allow_uncertified_ek = false;
};

struct EnrolmentStart {
  bool ok = false;                         // every check passed and the challenge was made
  std::vector<attestation::Check> checks;
  std::string device;                      // hex AK name (empty when the AK does not parse)
  protocol::CredentialChallenge challenge;
};

// Starts enrolling a device. Checks, each recorded with its reason:
//   ak.public       the AK's TPM2B_PUBLIC parses
//   ak.attributes   it is a restricted signing key fit for quotes (attestation::check_attestation_key)
//   ek.chain        the request carries an EK certificate (else refused, unless allow_uncertified_ek:
//                   then "not checked", and the record says the EK is uncertified); with ek_cas it
//                   chains to the bundle and certifies the request's EK public key, without ek_cas
//                   it is recorded "not checked"
//   ak.registered   the AK is not already registered for another EK
//   ek.credential   TPM2_MakeCredential succeeds for the EK (a restricted decryption key with an
//                   AES-CFB inner wrapper, TPM 2.0 Part 1 §24)
// On success stores the pending record: EK and AK public areas, SHA-256 of the secret, never the
// secret itself. An already enrolled device keeps its state until it answers the new challenge.
// Errors are the registry's only (Busy when another enrolment of the device stored it meanwhile).
[[nodiscard]] Result<EnrolmentStart> start_enrolment(const Registry& registry,
                                                     const protocol::EnrolmentRequest& request,
                                                     const EnrolmentOptions& options);

// Completes an enrolment with the secret the device released. With `device` (hex AK name) only
// that record is considered, else every pending one. The secret's SHA-256 is compared in
// constant time with each pending challenge; on a match the device is enrolled and its id
// returned. NotAuthorized "activation failed: the AK is not in the TPM of that EK" otherwise.
[[nodiscard]] Result<std::string> finish_enrolment(const Registry& registry, std::span<const uint8_t> secret,
                                                   const std::optional<std::string>& device = std::nullopt);

}  // namespace mcimd::op
