// Attestation: the endorsement key and its certificate, the attestation key, credential
// activation (enrolment), quotes (platform validation, 3GPP TR 33.812 §6.1) and the SRK's
// certification (provisioning: the key an operator wraps MCIM secrets for).
#include <openssl/evp.h>
#include <tss2/tss2_mu.h>

#include <algorithm>
#include <cstring>

#include "tpm/impl.hpp"

namespace mcimd::tpm {

namespace {

// PC Client Platform TPM Profile §4.6: 24 PCRs per bank, three select octets.
constexpr unsigned kPcrCount = 24;
constexpr uint8_t kSelectBytes = kPcrCount / 8;
// The largest qualifyingData we accept: a SHA-512 digest. TPM2B_DATA holds a TPMT_HA (66 octets).
constexpr std::size_t kMaxNonce = 64;

// TCG EK Credential Profile 2.0 §B.3.3: policy A, PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256
// (Table 19), shared by templates L-1 and L-2.
constexpr uint8_t kEkPolicyA[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
                                    0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
                                    0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};

// TCG EK Credential Profile 2.0 §B.3.3 templates L-1 (RSA 2048) and L-2 (ECC NIST P-256): a
// restricted decryption key usable only through policy A (userWithAuth clear, adminWithPolicy
// set), AES-128-CFB for children, unique zero-filled so every compliant tool derives the same key.
TPM2B_PUBLIC ek_template(EkType type) {
  TPM2B_PUBLIC t = restricted_decryption_template(
      type == EkType::EccP256, TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                   TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT);
  t.publicArea.authPolicy.size = sizeof kEkPolicyA;
  std::memcpy(t.publicArea.authPolicy.buffer, kEkPolicyA, sizeof kEkPolicyA);
  return t;
}

// The attestation key: a restricted ECDSA P-256/SHA-256 signing key (TCG EK Credential Profile
// and keylime/go-tpm-tools use the same shape), so it signs only TPM-generated structures.
TPM2B_PUBLIC ak_template() {
  TPM2B_PUBLIC t{};
  auto& a = t.publicArea;
  a.type = TPM2_ALG_ECC;
  a.nameAlg = TPM2_ALG_SHA256;
  a.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
                       TPMA_OBJECT_SIGN_ENCRYPT;
  auto& e = a.parameters.eccDetail;
  e.symmetric.algorithm = TPM2_ALG_NULL;
  e.scheme.scheme = TPM2_ALG_ECDSA;
  e.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  e.curveID = TPM2_ECC_NIST_P256;
  e.kdf.scheme = TPM2_ALG_NULL;
  return t;
}

const EVP_MD* digest_of(TPM2_ALG_ID alg) {
  switch (alg) {
    case TPM2_ALG_SHA1: return EVP_sha1();
    case TPM2_ALG_SHA256: return EVP_sha256();
    case TPM2_ALG_SHA384: return EVP_sha384();
    case TPM2_ALG_SHA512: return EVP_sha512();
    default: return nullptr;
  }
}

std::optional<std::string> bank_name(TPM2_ALG_ID alg) {
  for (const char* name : {"sha1", "sha256", "sha384", "sha512"})
    if (bank_info(name)->alg == alg) return std::string(name);
  return std::nullopt;
}

// The length of the DER value at the start of `der` (tag, length and contents), nullopt when it
// does not start with a definite-length SEQUENCE. EK certificate indices may be larger than the
// certificate and padded (TCG EK Credential Profile 2.0 §2.2.1.5).
std::optional<std::size_t> der_length(const Bytes& der) {
  if (der.size() < 2 || der[0] != 0x30) return std::nullopt;
  if (der[1] < 0x80) return 2u + der[1];
  std::size_t octets = der[1] & 0x7F;
  if (octets == 0 || octets > 3 || der.size() < 2 + octets) return std::nullopt;
  std::size_t len = 0;
  for (std::size_t i = 0; i < octets; ++i) len = (len << 8) | der[2 + i];
  return 2 + octets + len;
}

TPM2B_DATA qualifying_data_of(std::span<const uint8_t> data) {
  TPM2B_DATA out{};
  out.size = static_cast<uint16_t>(data.size());
  if (!data.empty()) std::memcpy(out.buffer, data.data(), data.size());
  return out;
}

// The attestation (TPMS_ATTEST, the TPM2B_ATTEST's contents) and signature as they are exported.
Result<Quote> exported(const TPM2B_ATTEST& attest, const TPMT_SIGNATURE& signature, std::string_view what) {
  Quote out;
  out.message.assign(attest.attestationData, attest.attestationData + attest.size);
  out.signature = MCIMD_TRY((marshal<TPMT_SIGNATURE, Tss2_MU_TPMT_SIGNATURE_Marshal>(signature, what)));
  return out;
}

}  // namespace

std::string_view to_string(EkType type) { return type == EkType::EccP256 ? "ECC P-256" : "RSA-2048"; }

Result<Bytes> object_name(std::span<const uint8_t> public_area) {
  auto pub = MCIMD_TRY((unmarshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(public_area, "public area")));
  const EVP_MD* md = digest_of(pub.publicArea.nameAlg);
  if (!md)
    return fail(Code::InvalidArgument, "Unsupported name algorithm " + hex32(pub.publicArea.nameAlg) +
                                           " in a public area");
  auto body = MCIMD_TRY((marshal<TPMT_PUBLIC, Tss2_MU_TPMT_PUBLIC_Marshal>(pub.publicArea, "a public area")));
  Bytes name(2 + EVP_MD_get_size(md));
  name[0] = static_cast<uint8_t>(pub.publicArea.nameAlg >> 8);
  name[1] = static_cast<uint8_t>(pub.publicArea.nameAlg & 0xFF);
  unsigned len = 0;
  if (EVP_Digest(body.data(), body.size(), name.data() + 2, &len, md, nullptr) != 1)
    return fail(Code::Internal, "Failed to hash a public area");
  return name;
}

// --- EK ---------------------------------------------------------------------------------------------
namespace {

Result<Object> create_ek(Context::Impl& impl, EkType type, EsysPtr<TPM2B_PUBLIC>* public_out) {
  TPM2B_PUBLIC templ = ek_template(type);
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcrs{};
  ESYS_TR primary = ESYS_TR_NONE;
  EsysPtr<TPM2B_PUBLIC> pub;
  MCIMD_CHECK(impl.call("create the " + std::string(to_string(type)) + " EK (endorsement hierarchy)", [&] {
    return Esys_CreatePrimary(impl.esys.get(), ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                              &sensitive, &templ, &outside, &creation_pcrs, &primary, OutPtr(pub), nullptr, nullptr,
                              nullptr);
  }));
  Object ek(*impl.self, primary, /*flush_on_destroy=*/true);
  if (public_out) *public_out = std::move(pub);
  return ek;
}

}  // namespace

Result<Bytes> Context::ek_public(EkType type) {
  EsysPtr<TPM2B_PUBLIC> pub;
  Object ek = MCIMD_TRY(create_ek(*impl_, type, &pub));
  return marshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Marshal>(*pub, "the EK public area");
}

Result<Bytes> Context::ek_certificate(EkType type) {
  auto& impl = *impl_;
  const uint32_t index = type == EkType::EccP256 ? kEkCertificateEccIndex : kEkCertificateRsaIndex;
  const std::string what = "the " + std::string(to_string(type)) + " EK certificate at NV index " + hex32(index);
  ESYS_TR tr = ESYS_TR_NONE;
  auto found = impl.call("look up " + what, [&] {
    return Esys_TR_FromTPMPublic(impl.esys.get(), index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
  });
  if (!found) {
    if (classify_rc(found.error().tss2_rc()) == RcKind::HandleAbsent)
      return fail(Code::NotFound, "The TPM holds no " + what.substr(4));
    return tl::unexpected(found.error());
  }
  Object nv(*this, tr, /*flush_on_destroy=*/false);
  EsysPtr<TPM2B_NV_PUBLIC> pub;
  MCIMD_CHECK(impl.call("read the public area of " + what, [&] {
    return Esys_NV_ReadPublic(impl.esys.get(), tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, OutPtr(pub), nullptr);
  }));
  const auto& attrs = pub->nvPublic.attributes;
  const uint16_t size = pub->nvPublic.dataSize;
  if (!(attrs & TPMA_NV_WRITTEN)) return fail(Code::NotFound, "The " + what.substr(4) + " was never written");
  // TCG EK Credential Profile 2.0 §2.2.1.5: readable with owner auth or the index's own (empty) auth.
  ESYS_TR auth = ESYS_TR_NONE;
  if (attrs & TPMA_NV_AUTHREAD) auth = tr;
  else if (attrs & TPMA_NV_OWNERREAD) auth = ESYS_TR_RH_OWNER;
  else return fail(Code::Unsupported, "Failed to read " + what + ": neither owner nor index auth may read it");

  std::size_t chunk = sizeof(TPM2B_MAX_NV_BUFFER::buffer);
  EsysPtr<TPMS_CAPABILITY_DATA> caps;
  TPMI_YES_NO more = TPM2_NO;
  MCIMD_CHECK(impl.call("query the TPM's NV buffer size", [&] {
    return Esys_GetCapability(impl.esys.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                              TPM2_PT_NV_BUFFER_MAX, 1, &more, OutPtr(caps));
  }));
  const auto& props = caps->data.tpmProperties;
  if (props.count > 0 && props.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX && props.tpmProperty[0].value > 0)
    chunk = std::min<std::size_t>(chunk, props.tpmProperty[0].value);

  Bytes der;
  der.reserve(size);
  while (der.size() < size) {
    const auto n = static_cast<uint16_t>(std::min<std::size_t>(chunk, size - der.size()));
    const auto offset = static_cast<uint16_t>(der.size());
    EsysPtr<TPM2B_MAX_NV_BUFFER> data;
    MCIMD_CHECK(impl.call("read " + what, [&] {
      return Esys_NV_Read(impl.esys.get(), auth, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n, offset,
                          OutPtr(data));
    }));
    if (data->size == 0 || data->size > n)
      return fail(Code::TpmFailure, "Failed to read " + what + ": the TPM returned " + std::to_string(data->size) +
                                        " bytes for " + std::to_string(n));
    der.insert(der.end(), data->buffer, data->buffer + data->size);
  }
  auto len = der_length(der);
  if (!len || *len > der.size())
    return fail(Code::TpmFailure, "The " + what.substr(4) + " is not a DER certificate");
  der.resize(*len);
  return der;
}

// --- AK ---------------------------------------------------------------------------------------------
Result<KeyBlob> Context::create_ak() {
  TPM2B_SENSITIVE_CREATE sensitive{};  // empty auth, no data: the TPM generates the key
  return impl_->create_under_srk(sensitive, ak_template(), "create the attestation key");
}

Result<Object> Context::load_ak(const KeyBlob& ak) {
  auto pub = MCIMD_TRY((unmarshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(ak.public_area,
                                                                               "public area of the attestation key")));
  const auto& a = pub.publicArea;
  constexpr TPMA_OBJECT needed = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM;
  if ((a.type != TPM2_ALG_ECC && a.type != TPM2_ALG_RSA) || (a.objectAttributes & needed) != needed ||
      (a.objectAttributes & TPMA_OBJECT_DECRYPT))
    return fail(Code::InvalidArgument,
                "The attestation key blob is not a restricted fixedTPM signing key; refusing to use it");
  return impl_->load(ak, "the attestation key");
}

// --- credential activation ------------------------------------------------------------------------------
Result<SecureBytes> Context::activate_credential(const KeyBlob& ak, EkType ek_type,
                                                 const CredentialChallenge& challenge) {
  auto& impl = *impl_;
  auto blob = MCIMD_TRY((unmarshal<TPM2B_ID_OBJECT, Tss2_MU_TPM2B_ID_OBJECT_Unmarshal>(
      challenge.credential_blob, "credential blob (TPM2B_ID_OBJECT)")));
  auto secret = MCIMD_TRY((unmarshal<TPM2B_ENCRYPTED_SECRET, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal>(
      challenge.encrypted_secret, "encrypted secret (TPM2B_ENCRYPTED_SECRET)")));
  if (blob.size == 0 || secret.size == 0)
    return fail(Code::InvalidArgument, "Malformed credential challenge: empty credential blob or secret");

  // Two object slots (AK, EK) and two sessions; swtpm without a resource manager has three slots.
  Object key = MCIMD_TRY(load_ak(ak));
  Object ek = MCIMD_TRY(create_ek(impl, ek_type, nullptr));
  Object ak_session = MCIMD_TRY(impl.start_salted_session(TPM2_SE_HMAC));
  // certInfo (the released secret) is the first response parameter: encrypted on the bus.
  MCIMD_CHECK(impl.set_session_attributes(ak_session.handle(), TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION));

  // EK Credential Profile policy A: PolicySecret(TPM_RH_ENDORSEMENT). The policy session needs
  // no salt: it carries no secret, the endorsement auth is sent in a password session.
  Object policy = MCIMD_TRY(impl.start_session(TPM2_SE_POLICY, /*salted=*/false));
  const ESYS_TR policy_tr = policy.handle();
  MCIMD_CHECK(impl.call("satisfy the EK policy (PolicySecret with the endorsement hierarchy)", [&] {
    return Esys_PolicySecret(impl.esys.get(), ESYS_TR_RH_ENDORSEMENT, policy_tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE, nullptr, nullptr, nullptr, 0, nullptr, nullptr);
  }));

  EsysSecretPtr<TPM2B_DIGEST> cert_info;
  auto activated = impl.call("activate the credential", [&] {
    return Esys_ActivateCredential(impl.esys.get(), key.handle(), ek.handle(), ak_session.handle(), policy_tr,
                                   ESYS_TR_NONE, &blob, &secret, OutPtr(cert_info));
  });
  if (!activated) {
    auto error = activated.error();
    if (error.has_tss2_rc()) {
      // Part 3 TPM2_ActivateCredential: the seed does not decrypt (another EK) or the HMAC over
      // the blob and the AK's name does not verify (another AK).
      switch (rc_base(error.tss2_rc())) {
        case TPM2_RC_INTEGRITY:
        case TPM2_RC_VALUE:
        case TPM2_RC_SIZE:
        case TPM2_RC_ECC_POINT:
        case TPM2_RC_KEY:
          error.code = Code::InvalidArgument;
          error.message += " (the challenge was not made for this TPM's " + std::string(to_string(ek_type)) +
                           " EK and this attestation key)";
          break;
        default:
          break;
      }
    }
    return tl::unexpected(std::move(error));
  }
  return SecureBytes(cert_info->buffer, cert_info->buffer + cert_info->size);
}

// --- quotes -----------------------------------------------------------------------------------------------
Result<Quote> Context::quote(const KeyBlob& ak, std::span<const uint8_t> nonce,
                             std::span<const PcrSelection> selections) {
  auto& impl = *impl_;
  if (nonce.size() > kMaxNonce)
    return fail(Code::InvalidArgument, "A quote nonce is at most 64 bytes, not " + std::to_string(nonce.size()));
  if (selections.empty()) return fail(Code::InvalidArgument, "A quote needs at least one PCR bank");
  if (selections.size() > TPM2_NUM_PCR_BANKS)
    return fail(Code::InvalidArgument, "A quote covers at most " + std::to_string(TPM2_NUM_PCR_BANKS) + " PCR banks");
  TPML_PCR_SELECTION sel{};
  std::string described;
  for (const auto& s : selections) {
    if (s.pcrs.empty()) return fail(Code::InvalidArgument, "PCR bank " + s.bank + " in a quote lists no PCR");
    auto one = MCIMD_TRY(to_tpml(s));
    for (uint32_t i = 0; i < sel.count; ++i)
      if (sel.pcrSelections[i].hash == one.pcrSelections[0].hash)
        return fail(Code::InvalidArgument, "PCR bank " + s.bank + " is listed twice in a quote");
    sel.pcrSelections[sel.count++] = one.pcrSelections[0];
    described += (described.empty() ? "" : "+") + to_string(s);
  }
  TPM2B_DATA qualifying = qualifying_data_of(nonce);
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;  // the AK's own scheme

  Object key = MCIMD_TRY(load_ak(ak));
  EsysPtr<TPM2B_ATTEST> quoted;
  EsysPtr<TPMT_SIGNATURE> signature;
  MCIMD_CHECK(impl.call("quote PCRs " + described, [&] {
    return Esys_Quote(impl.esys.get(), key.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qualifying,
                      &scheme, &sel, OutPtr(quoted), OutPtr(signature));
  }));
  return exported(*quoted, *signature, "the quote signature");
}

// --- the SRK's certification ------------------------------------------------------------------------------
Result<Quote> Context::certify_srk(const KeyBlob& ak, std::span<const uint8_t> qualifying_data) {
  auto& impl = *impl_;
  if (qualifying_data.size() > kMaxNonce)
    return fail(Code::InvalidArgument,
                "Qualifying data is at most 64 bytes, not " + std::to_string(qualifying_data.size()));
  TPM2B_DATA qualifying = qualifying_data_of(qualifying_data);
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;  // the AK's own scheme
  ESYS_TR srk = MCIMD_TRY(impl.srk_handle());
  Object key = MCIMD_TRY(load_ak(ak));
  EsysPtr<TPM2B_ATTEST> certified;
  EsysPtr<TPMT_SIGNATURE> signature;
  // Part 3 §18.2: the SRK in the ADMIN role (its empty authValue: adminWithPolicy is clear in the
  // SRK template), the AK in the USER role (empty authValue). Nothing secret travels.
  MCIMD_CHECK(impl.call("certify the SRK with the attestation key", [&] {
    return Esys_Certify(impl.esys.get(), srk, key.handle(), ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                        &qualifying, &scheme, OutPtr(certified), OutPtr(signature));
  }));
  return exported(*certified, *signature, "the certification signature");
}

Result<std::vector<PcrSelection>> Context::allocated_pcr_banks(std::span<const unsigned> pcrs) {
  for (unsigned pcr : pcrs)
    if (pcr >= kPcrCount) return fail(Code::InvalidArgument, "PCR " + std::to_string(pcr) + " does not exist (0-23)");
  auto& impl = *impl_;
  EsysPtr<TPMS_CAPABILITY_DATA> caps;
  TPMI_YES_NO more = TPM2_NO;
  MCIMD_CHECK(impl.call("query the allocated PCR banks", [&] {
    return Esys_GetCapability(impl.esys.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1, &more,
                              OutPtr(caps));
  }));
  std::vector<unsigned> wanted(pcrs.begin(), pcrs.end());
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  std::vector<PcrSelection> out;
  const auto& assigned = caps->data.assignedPCR;
  for (uint32_t i = 0; i < assigned.count; ++i) {
    const auto& s = assigned.pcrSelections[i];
    auto name = bank_name(s.hash);
    if (!name) continue;  // a bank this library cannot name (e.g. SM3): left out
    PcrSelection sel{*name, {}};
    for (unsigned pcr : wanted)
      if (pcr / 8 < std::min<unsigned>(s.sizeofSelect, kSelectBytes) && (s.pcrSelect[pcr / 8] & (1u << (pcr % 8))))
        sel.pcrs.push_back(pcr);
    if (!sel.pcrs.empty()) out.push_back(std::move(sel));
  }
  return out;
}

Result<std::vector<PcrSelection>> Context::allocated_pcr_banks() {
  std::vector<unsigned> all(kPcrCount);
  for (unsigned i = 0; i < kPcrCount; ++i) all[i] = i;
  return allocated_pcr_banks(all);
}

}  // namespace mcimd::tpm
