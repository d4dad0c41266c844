#pragma once
// Signed PCR policies (the PolicyAuthorize model, TPM 2.0 Part 3 §23.16), without a TPM: the
// policy authority's key as a TPM sees it, the policy digests both sides compute, and the
// signed policy document a gateway vendor or operator issues for a platform state.
//
// An MCIM object's authPolicy is PolicyAuthorize(authority, kPcrPolicyRef): it names the
// authority's key, not PCR values. The authority approves a platform state by signing the
// PolicyPCR digest of its PCR values; the gateway proves the signature to its TPM
// (TPM2_VerifySignature → ticket) and, for each use, runs PolicyPCR then PolicyAuthorize. A
// firmware update therefore comes with a newly signed policy, and nothing is re-provisioned.
// Later policy steps (PolicyNV for revocation) are appended after PolicyAuthorize.
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::protocol {

// policyRef bound into every authPolicy mcimd makes, so a signature of the authority for another
// purpose never approves a platform state here. The bytes of this string, no terminator.
inline constexpr std::string_view kPcrPolicyRef = "mcimd/pcr-policy/v1";

// The policy authority: an ECC NIST P-256 public key.
struct PolicyAuthority {
  Bytes public_area;  // marshaled TPM2B_PUBLIC as TPM2_LoadExternal takes it (see policy_authority_from_pem)
  Bytes name;         // its TPM name: 0x000B ‖ SHA-256(marshaled TPMT_PUBLIC), 34 bytes
};

// From a PEM SubjectPublicKeyInfo (or a PEM private key, whose public half is taken). The TPM
// public area is fixed so every party derives the same name: ECC, nameAlg SHA-256, attributes
// sign | userWithAuth, scheme ECDSA with SHA-256, curve NIST P-256, no KDF, no symmetric.
// InvalidArgument for anything but a P-256 key.
[[nodiscard]] Result<PolicyAuthority> policy_authority_from_pem(std::string_view pem);
[[nodiscard]] Result<PolicyAuthority> load_policy_authority(const std::filesystem::path& pem_file);

// authPolicy of objects bound to the authority (Part 3 §23.16 TPM2_PolicyAuthorize):
//   H(H(0^32 ‖ TPM_CC_PolicyAuthorize ‖ authority name) ‖ policyRef), SHA-256.
Bytes authorize_policy_digest(std::span<const uint8_t> authority_name, std::span<const uint8_t> policy_ref);

// ---- deletion binding (PolicyNV) ------------------------------------------------------------
// A profile's objects can also be bound to a deletion counter: an NV counter of its own that
// deleting the profile advances. Their authPolicy then ends in TPM2_PolicyNV(counter == value),
// so a copy of the blobs made before the deletion never satisfies its policy again, whoever
// holds it: a TPM counter only moves forward, and one undefined and defined again starts above
// every value any counter of that TPM has held (Part 3 §31.8 TPM2_NV_Increment).
struct DeletionBinding {
  uint32_t nv_index = 0;  // 0x01xxxxxx
  uint64_t value = 0;     // the counter's value while the profile lives
  bool operator==(const DeletionBinding&) const = default;
};
// TPMA_NV of a deletion counter (Part 2 §13.4): TPM_NT_COUNTER, AUTHREAD|AUTHWRITE with an empty
// authValue (anyone may read it, for PolicyNV; advancing it can only make a profile unusable, which
// whoever may delete the store's files can do anyway), NO_DA, not ORDERLY (every increment is
// written at once, so an unclean shutdown never moves it), WRITTEN once it was first incremented.
inline constexpr uint32_t kDeletionCounterAttributes = 0x00000010u /*TPM_NT_COUNTER << 4*/ | 0x00040000u /*AUTHREAD*/ |
                                                       0x00000004u /*AUTHWRITE*/ | 0x02000000u /*NO_DA*/ |
                                                       0x20000000u /*WRITTEN*/;
// The TPM name of the deletion counter at nv_index once written: 0x000B ‖ SHA-256(TPMS_NV_PUBLIC).
Bytes deletion_counter_name(uint32_t nv_index);
// authPolicy of objects bound to the authority and to a deletion counter (Part 3 §23.9 TPM2_PolicyNV):
//   H(authorize_policy_digest ‖ TPM_CC_PolicyNV ‖ H(operandB ‖ offset ‖ TPM_EO_EQ) ‖ counter name),
// operandB the value as 8 big-endian octets, offset 0.
Bytes bound_policy_digest(std::span<const uint8_t> authority_name, std::span<const uint8_t> policy_ref,
                          const DeletionBinding& binding);

// PCR values one policy approves: one bank, indices 0–23 with a value of the bank's size each.
struct PcrValues {
  std::string bank = "sha256";  // sha1 | sha256 | sha384 | sha512
  std::map<unsigned, Bytes> values;
  bool operator==(const PcrValues&) const = default;
};
// InvalidArgument naming the problem: unknown bank, no PCR, index above 23, a value of the wrong size.
[[nodiscard]] Status check_pcr_values(const PcrValues& pcrs);
// SHA-256 over the values concatenated in ascending index order: PolicyPCR's pcrDigest argument.
Bytes pcr_values_digest(const PcrValues& pcrs);
// Marshaled TPML_PCR_SELECTION of the bank and indices (sizeofSelect 3).
Bytes pcr_selection_bytes(const PcrValues& pcrs);
// The policy digest TPM2_PolicyPCR leaves in a fresh SHA-256 session (Part 3 §23.7):
//   H(0^32 ‖ TPM_CC_PolicyPCR ‖ TPML_PCR_SELECTION ‖ pcrDigest).
[[nodiscard]] Result<Bytes> pcr_policy_digest(const PcrValues& pcrs);
// What the authority signs (Part 3 §23.16): aHash = SHA-256(approvedPolicy ‖ policyRef).
Bytes approval_digest(std::span<const uint8_t> approved_policy, std::span<const uint8_t> policy_ref);

// The document, {"format":"mcimd-pcr-policy-1", "authority": B64 (TPM name), "policy_ref": B64,
// "pcrs": {"bank": "sha256", "values": {"7": B64, ...}}, "approved_policy": B64,
// "signature": B64 (marshaled TPMT_SIGNATURE, ECDSA with SHA-256)}, base64url without padding.
struct SignedPcrPolicy {
  Bytes authority;        // TPM name of the authority key
  Bytes policy_ref;
  PcrValues pcrs;
  Bytes approved_policy;  // pcr_policy_digest(pcrs)
  Bytes signature;        // marshaled TPMT_SIGNATURE over approval_digest(approved_policy, policy_ref)
  bool operator==(const SignedPcrPolicy&) const = default;
};
std::string to_json(const SignedPcrPolicy& policy);
// Strict: unknown or missing fields, wrong types, oversized members, a malformed TPMT_SIGNATURE
// or PCR values that fail check_pcr_values → InvalidArgument naming the field.
[[nodiscard]] Result<SignedPcrPolicy> signed_pcr_policy_from_json(std::string_view text);
// A short stable id for messages and file names: the first 16 hex digits of approved_policy.
std::string policy_id(const SignedPcrPolicy& policy);

// Checks a signed policy in software before any TPM sees it, in this order:
//   policy_ref is kPcrPolicyRef; approved_policy equals pcr_policy_digest(pcrs) (so what was
//   signed is what the values say); authority equals the configured authority's name; the
//   signature is ECDSA P-256/SHA-256 by that key over approval_digest.
// InvalidArgument for a mismatch of content, NotAuthorized for the wrong signer or a bad signature.
[[nodiscard]] Status verify_pcr_policy(const SignedPcrPolicy& policy, const PolicyAuthority& authority);

// Authority side: signs approval of `pcrs` with a P-256 private key in PEM. InvalidArgument for a
// bad key or bad values.
[[nodiscard]] Result<SignedPcrPolicy> sign_pcr_policy(std::string_view private_key_pem, const PcrValues& pcrs);

}  // namespace mcimd::protocol
