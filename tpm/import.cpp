// Imported objects: K and OPc as an operator wrapped them for this TPM's SRK (TPM2_Import), checked
// to be objects mcimd would have made itself before the TPM sees them.
#include <optional>
#include <string>
#include <vector>

#include "tpm/impl.hpp"

namespace mcimd::tpm {

namespace {

// TPM2_Import's parameters in order (Part 3 §13.3), as a format-one response code numbers them.
enum ImportParameter : unsigned { kEncryptionKey = 1, kObjectPublic = 2, kDuplicate = 3, kInSymSeed = 4 };

// Attributes named in refusals (Part 2 §8.3 TPMA_OBJECT); others are shown in hex.
constexpr std::pair<TPMA_OBJECT, const char*> kNamedAttributes[] = {
    {TPMA_OBJECT_FIXEDTPM, "fixedTPM"},
    {TPMA_OBJECT_STCLEAR, "stClear"},
    {TPMA_OBJECT_FIXEDPARENT, "fixedParent"},
    {TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin"},
    {TPMA_OBJECT_RESTRICTED, "restricted"},
    {TPMA_OBJECT_ENCRYPTEDDUPLICATION, "encryptedDuplication"},
};

// The objects mcimd makes (tpm/seal.cpp) and an operator packages (attestation/duplication.hpp):
// everything else is refused with every problem named, before the TPM sees it.
Status check_importable(const TPMT_PUBLIC& p) {
  std::vector<std::string> problems;
  const TPMA_OBJECT a = p.objectAttributes;
  const bool aes_key = p.type == TPM2_ALG_SYMCIPHER;
  const bool sealed = p.type == TPM2_ALG_KEYEDHASH;
  if (!aes_key && !sealed) problems.push_back("it is neither an AES key nor sealed data (type " + hex32(p.type) + ")");
  if (aes_key) {
    const auto& sym = p.parameters.symDetail.sym;
    if (sym.algorithm != TPM2_ALG_AES || sym.keyBits.aes != 128 || sym.mode.aes != TPM2_ALG_ECB)
      problems.push_back("it is a symmetric key other than AES-128 in ECB mode");
    if (!(a & TPMA_OBJECT_SIGN_ENCRYPT)) problems.push_back("sign (encrypt) is clear: the key could not encrypt");
  }
  if (sealed) {
    if (p.parameters.keyedHashDetail.scheme.scheme != TPM2_ALG_NULL)
      problems.push_back("it is a keyed-hash key (scheme " + hex32(p.parameters.keyedHashDetail.scheme.scheme) +
                         "), not sealed data");
    if (a & TPMA_OBJECT_SIGN_ENCRYPT) problems.push_back("sign is set on sealed data");
  }
  if (p.nameAlg != TPM2_ALG_SHA256) problems.push_back("its nameAlg is not SHA-256");
  if (a & TPMA_OBJECT_DECRYPT) problems.push_back("decrypt is set: the key could decrypt");
  if (a & TPMA_OBJECT_USERWITHAUTH) problems.push_back("userWithAuth is set: a password would unlock it");
  if (!(a & TPMA_OBJECT_ADMINWITHPOLICY)) problems.push_back("adminWithPolicy is clear");
  if (!(a & TPMA_OBJECT_NODA)) problems.push_back("noDA is clear");
  TPMA_OBJECT others = a & ~(TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_USERWITHAUTH |
                             TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_NODA);
  for (auto [bit, name] : kNamedAttributes)
    if (others & bit) {
      problems.push_back(std::string(name) + " is set");
      others &= ~bit;
    }
  if (others) problems.push_back("attributes " + hex32(others) + " are set");
  // PolicyAuthorize digests are SHA-256 (protocol::authorize_policy_digest).
  if (p.authPolicy.size != 32) problems.push_back("its authPolicy is not a SHA-256 policy digest");
  if (problems.empty()) return {};
  std::string message = "Refusing to import an object mcimd would not use: ";
  for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
  return fail(Code::InvalidArgument, message);
}

// The parameter a format-one TPM response code names (Part 2 §6.6.3: P set, number in bits 8–11).
std::optional<unsigned> rc_parameter(uint32_t rc) {
  const uint32_t layer = rc & TSS2_RC_LAYER_MASK;
  if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER) return std::nullopt;
  if (!(rc & TPM2_RC_FMT1) || !(rc & TPM2_RC_P)) return std::nullopt;
  return (rc & TPM2_RC_N_MASK) >> 8;
}

// libtpms (swtpm) answers TPM_RC_FAILURE rather than TPM_RC_VALUE when an RSA seed does not
// decrypt (its OAEP decoding through OpenSSL). A TPM that really is in failure mode says so in
// TPM2_GetTestResult (Part 3 §10.4), which it still accepts; one that is not only refused the seed.
bool in_failure_mode(Context::Impl& impl) {
  EsysPtr<TPM2B_MAX_BUFFER> data;
  TPM2_RC result = TPM2_RC_FAILURE;
  auto asked = impl.call("ask the TPM for its self-test result", [&] {
    return Esys_GetTestResult(impl.esys.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, OutPtr(data), &result);
  });
  return !asked || result != TPM2_RC_SUCCESS;
}

// What TPM2_Import's refusal means for the package (Part 3 §13.3 lists the codes).
Error import_error(Context::Impl& impl, Error error) {
  if (!error.has_tss2_rc()) return error;
  const uint32_t rc = error.tss2_rc();
  const std::optional<unsigned> parameter = rc_parameter(rc);
  auto as = [&](Code code, std::string_view why) {
    return Error{code, error.message + " (" + std::string(why) + ")", rc};
  };
  switch (rc_base(rc)) {
    case TPM2_RC_INTEGRITY:
      // The outer HMAC covers the encrypted sensitive area and the name: a wrong seed, or any
      // changed byte of the public area or the duplicate, fails it.
      return as(Code::TpmMismatch, "the duplicate's integrity check failed: it was made for another TPM's SRK, or "
                                   "its public area, duplicate or seed was altered");
    case TPM2_RC_BINDING:
      return as(Code::InvalidArgument, "the public area's unique is not the digest of the sensitive area it came "
                                       "with: the package was made wrongly");
    case TPM2_RC_FAILURE:
      if (in_failure_mode(impl)) return error;
      return as(Code::TpmMismatch, "the seed does not decrypt with this TPM's SRK: made for another TPM, or altered; "
                                   "the TPM is not in failure mode");
    default:
      break;
  }
  if (parameter == kObjectPublic) return as(Code::InvalidArgument, "the TPM refused the object's public area");
  if (parameter == kInSymSeed)
    return as(Code::TpmMismatch, "the seed does not decrypt with this TPM's SRK: made for another TPM, or altered");
  if (parameter == kDuplicate)
    return as(Code::TpmMismatch, "the duplicate does not decrypt with this TPM's SRK: made for another TPM, or altered");
  switch (rc_base(rc)) {
    case TPM2_RC_VALUE:
    case TPM2_RC_ECC_POINT:
    case TPM2_RC_NO_RESULT:
    case TPM2_RC_INSUFFICIENT:
      return as(Code::TpmMismatch, "the seed does not decrypt with this TPM's SRK: made for another TPM, or altered");
    case TPM2_RC_ATTRIBUTES:
    case TPM2_RC_TYPE:
    case TPM2_RC_HASH:
    case TPM2_RC_KEY:
    case TPM2_RC_KEY_SIZE:
    case TPM2_RC_SCHEME:
    case TPM2_RC_SYMMETRIC:
    case TPM2_RC_KDF:
      return as(Code::InvalidArgument, "the TPM refused the object as defined");
    default:
      return error;
  }
}

}  // namespace

Result<KeyBlob> Context::import_object(const ImportBlob& blob) {
  auto& impl = *impl_;
  auto pub = MCIMD_TRY((unmarshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(
      blob.public_area, "public area of the imported object (TPM2B_PUBLIC)")));
  MCIMD_CHECK(check_importable(pub.publicArea));
  auto duplicate = MCIMD_TRY((unmarshal<TPM2B_PRIVATE, Tss2_MU_TPM2B_PRIVATE_Unmarshal>(
      blob.duplicate, "duplicate of the imported object (TPM2B_PRIVATE)")));
  auto seed = MCIMD_TRY((unmarshal<TPM2B_ENCRYPTED_SECRET, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal>(
      blob.seed, "seed of the imported object (TPM2B_ENCRYPTED_SECRET)")));
  // An empty seed is an import in the clear (Part 3 §13.3): the secret would have crossed the
  // network unprotected. mcimd takes only objects wrapped for its SRK.
  if (duplicate.size == 0 || seed.size == 0)
    return fail(Code::InvalidArgument, "Refusing to import an object that is not wrapped for the SRK (empty " +
                                           std::string(duplicate.size == 0 ? "duplicate" : "seed") + ")");

  ESYS_TR parent = MCIMD_TRY(impl.srk_handle());
  TPM2B_DATA no_inner_key{};  // no inner wrapper
  TPMT_SYM_DEF_OBJECT no_inner{};
  no_inner.algorithm = TPM2_ALG_NULL;
  EsysPtr<TPM2B_PRIVATE> out;
  // A password session for the SRK's empty auth is enough: parameter encryption would cover only
  // the first parameter, encryptionKey, which is empty. The secret inside the duplicate is already
  // encrypted with a seed only the SRK recovers, and outPrivate is encrypted under the SRK.
  auto imported = impl.call("import the object under the SRK", [&] {
    return Esys_Import(impl.esys.get(), parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &no_inner_key, &pub,
                       &duplicate, &seed, &no_inner, OutPtr(out));
  });
  if (!imported) return tl::unexpected(import_error(impl, std::move(imported).error()));
  KeyBlob result;
  result.public_area = blob.public_area;
  result.private_area = MCIMD_TRY((marshal<TPM2B_PRIVATE, Tss2_MU_TPM2B_PRIVATE_Marshal>(*out, "a private area")));
  return result;
}

}  // namespace mcimd::tpm
