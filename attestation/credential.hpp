#pragma once
// TPM2_MakeCredential in software (TPM 2.0 Part 1 §24 "Credential Protection"): the operator
// encrypts a secret to a device's EK so that only that TPM, and only for the named AK, releases
// it with TPM2_ActivateCredential. Also the KDFs of Part 1 §11.4.10.
#include <cstdint>
#include <span>
#include <string_view>

#include "attestation/verifier_tpm.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "protocol/evidence.hpp"

namespace mcimd::attestation {

// Name of a key from its marshaled TPM2B_PUBLIC: nameAlg ‖ H_nameAlg(TPMT_PUBLIC).
[[nodiscard]] Result<Bytes> ak_name(std::span<const uint8_t> ak_public);

// Builds the credential challenge for ek_public (marshaled TPM2B_PUBLIC of a storage key,
// RSA 2048+ or ECC P-256/P-384, AES-CFB symmetric) and the AK name. The secret is at most the
// digest size of the EK's nameAlg (TPM2_MakeCredential's limit) and at least one byte.
// wrap_for_storage_key(EK, "IDENTITY", name, TPM2B_DIGEST(secret)) (Part 1 §24.4, §24.5):
//   credential_blob = TPM2B_ID_OBJECT(TPM2B_DIGEST(outerHMAC) ‖ encIdentity)
//   encrypted_secret = TPM2B_ENCRYPTED_SECRET(RSA ciphertext | marshaled TPMS_ECC_POINT Qe)
[[nodiscard]] Result<protocol::CredentialChallenge> make_credential(std::span<const uint8_t> ek_public,
                                                                    std::span<const uint8_t> ak_name,
                                                                    std::span<const uint8_t> secret);

// The protection a storage key gives a payload, the same for a credential (Part 1 §24) and for
// a duplicate's outer wrapper (Part 1 §23.3.2.3), for the parent `parent` (a storage key, see
// check_storage_key) and the protected object's name:
//   RSA: seed random (nameAlg digest size), encrypted with RSA-OAEP(nameAlg, label ‖ 0) (Annex B.10.3)
//   ECC: ephemeral ECDH on the parent's curve, seed = KDFe(nameAlg, Z, label, Qe.x, Qs.x) (Annex C.6.1)
//   symKey    = KDFa(nameAlg, seed, "STORAGE", name, "", the parent's symmetric key bits)
//   encrypted = AES-CFB(symKey, IV = 0, payload)
//   HMACkey   = KDFa(nameAlg, seed, "INTEGRITY", "", "", digest bits)
//   outerHMAC = HMAC_nameAlg(HMACkey, encrypted ‖ name)
// nameAlg is the parent's. Every intermediate secret is wiped. InvalidArgument for a name that is
// not nameAlg ‖ digest, or a payload larger than a TPM2B_PRIVATE holds.
struct OuterWrap {
  Bytes wrapped;         // TPM2B(TPM2B_DIGEST(outerHMAC) ‖ encrypted): a TPM2B_ID_OBJECT or TPM2B_PRIVATE
  Bytes encrypted_seed;  // TPM2B_ENCRYPTED_SECRET: the RSA ciphertext or the marshaled TPMS_ECC_POINT Qe
};
[[nodiscard]] Result<OuterWrap> wrap_for_storage_key(const TpmPublic& parent, std::string_view label,
                                                     std::span<const uint8_t> name, std::span<const uint8_t> payload);

// Part 1 §11.4.10.2 KDFa (SP 800-108 counter mode with HMAC): for i = 1.. HMAC(key, i ‖ label ‖ 0 ‖
// context_u ‖ context_v ‖ bits), truncated to bits (a multiple of 8).
[[nodiscard]] Result<SecureBytes> kdfa(uint16_t hash_alg, std::span<const uint8_t> key, std::string_view label,
                                       std::span<const uint8_t> context_u, std::span<const uint8_t> context_v,
                                       uint32_t bits);
// Part 1 §11.4.10.3 KDFe (SP 800-56A concatenation): for i = 1.. H(i ‖ Z ‖ label ‖ 0 ‖ party_u ‖ party_v).
[[nodiscard]] Result<SecureBytes> kdfe(uint16_t hash_alg, std::span<const uint8_t> z, std::string_view label,
                                       std::span<const uint8_t> party_u, std::span<const uint8_t> party_v,
                                       uint32_t bits);

// The file tpm2_makecredential writes and tpm2_activatecredential -i reads: magic 0xBADCC0DE,
// version 1 (both big-endian), then the TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
Bytes to_tpm2_tools_credential(const protocol::CredentialChallenge& challenge);

}  // namespace mcimd::attestation
