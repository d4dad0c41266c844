#include "attestation/verifier_tpm.hpp"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace mcimd::attestation {

namespace {

using EvpPkeyCtx = CHandle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using EvpMdCtx = CHandle<EVP_MD_CTX, EVP_MD_CTX_free>;
using ParamBld = CHandle<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using Params = CHandle<OSSL_PARAM, OSSL_PARAM_free>;
using Bignum = CHandle<BIGNUM, BN_free>;
using EcdsaSig = CHandle<ECDSA_SIG, ECDSA_SIG_free>;

std::string hex16(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%04x", v);
  return buf;
}

const EVP_MD* evp_md(uint16_t hash_alg) {
  switch (hash_alg) {
    case alg::kSha1: return EVP_sha1();
    case alg::kSha256: return EVP_sha256();
    case alg::kSha384: return EVP_sha384();
    case alg::kSha512: return EVP_sha512();
    default: return nullptr;
  }
}

// NIST curve ids (Part 2 §6.4 TPM_ECC_CURVE) → OpenSSL group name and coordinate size.
struct Curve {
  const char* group;
  std::size_t size;
};
std::optional<Curve> curve_of(uint16_t tpm_curve) {
  switch (tpm_curve) {
    case 0x0003: return Curve{"prime256v1", 32};  // TPM_ECC_NIST_P256
    case 0x0004: return Curve{"secp384r1", 48};   // TPM_ECC_NIST_P384
    default: return std::nullopt;
  }
}

Result<EvpPkey> rsa_key(std::span<const uint8_t> modulus, uint32_t exponent) {
  // Part 2 §12.2.3.5: an exponent of zero means the default 2^16 + 1.
  if (exponent == 0) exponent = 65537;
  Bignum n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
  Bignum e(BN_new());
  if (!n || !e || !BN_set_word(e.get(), exponent)) return fail(Code::Internal, "BIGNUM: " + openssl_error());
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
    return fail(Code::Internal, "OSSL_PARAM_BLD: " + openssl_error());
  Params params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0)
    return fail(Code::InvalidArgument, "RSA public key refused: " + openssl_error());
  return EvpPkey(raw);
}

Result<EvpPkey> ecc_key(const Curve& curve, std::span<const uint8_t> x, std::span<const uint8_t> y) {
  if (x.size() > curve.size || y.size() > curve.size || x.empty() || y.empty())
    return fail(Code::InvalidArgument, "ECC point coordinates have the wrong size");
  // SEC 1 §2.3.3 uncompressed point: 0x04 ‖ X ‖ Y, each left-padded to the field size.
  Bytes point(1 + 2 * curve.size, 0);
  point[0] = 0x04;
  std::memcpy(point.data() + 1 + curve.size - x.size(), x.data(), x.size());
  std::memcpy(point.data() + 1 + 2 * curve.size - y.size(), y.data(), y.size());
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve.group, 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
    return fail(Code::Internal, "OSSL_PARAM_BLD: " + openssl_error());
  Params params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0)
    return fail(Code::InvalidArgument, "ECC public point refused: " + openssl_error());
  EvpPkey key(raw);
  // fromdata does not always check the point is on the curve; a public key check does.
  EvpPkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1)
    return fail(Code::InvalidArgument, "ECC public point is not on the curve");
  return key;
}

// The requirements a key misses, collected so that one refusal names them all.
class Missing {
 public:
  void need(bool ok, const char* requirement) {
    if (!ok) list_ += (list_.empty() ? "" : ", ") + std::string(requirement);
  }
  // InvalidArgument "<what>: <every missing requirement>", or success.
  Status refuse_as(const std::string& what) const {
    if (list_.empty()) return {};
    return fail(Code::InvalidArgument, what + ": " + list_);
  }

 private:
  std::string list_;
};

}  // namespace

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Result<uint16_t> hash_alg_from_name(std::string_view bank) {
  if (bank == "sha1") return alg::kSha1;
  if (bank == "sha256") return alg::kSha256;
  if (bank == "sha384") return alg::kSha384;
  if (bank == "sha512") return alg::kSha512;
  return fail(Code::InvalidArgument, "unknown PCR bank \"" + std::string(bank) + "\"");
}

std::string hash_alg_name(uint16_t hash_alg) {
  switch (hash_alg) {
    case alg::kSha1: return "sha1";
    case alg::kSha256: return "sha256";
    case alg::kSha384: return "sha384";
    case alg::kSha512: return "sha512";
    default: return "";
  }
}

std::size_t hash_size(uint16_t hash_alg) {
  switch (hash_alg) {
    case alg::kSha1: return 20;
    case alg::kSha256: return 32;
    case alg::kSha384: return 48;
    case alg::kSha512: return 64;
    default: return 0;
  }
}

Result<Bytes> hash(uint16_t hash_alg, std::span<const uint8_t> data) {
  const EVP_MD* md = evp_md(hash_alg);
  if (!md) return fail(Code::Unsupported, "hash algorithm " + hex16(hash_alg) + " unsupported");
  Bytes out(EVP_MD_get_size(md));
  unsigned len = 0;
  if (!EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr))
    return fail(Code::Internal, "EVP_Digest: " + openssl_error());
  out.resize(len);
  return out;
}

Result<Bytes> tpm_name(uint16_t name_alg, std::span<const uint8_t> tpmt_public) {
  Bytes digest = MCIMD_TRY(hash(name_alg, tpmt_public));
  Bytes name = {uint8_t(name_alg >> 8), uint8_t(name_alg & 0xff)};
  name.insert(name.end(), digest.begin(), digest.end());
  return name;
}

Result<TpmPublic> parse_tpm_public(std::span<const uint8_t> in) {
  if (in.size() < 2) return fail(Code::InvalidArgument, "TPM2B_PUBLIC: too short");
  std::size_t declared = (std::size_t(in[0]) << 8) | in[1];
  if (declared + 2 != in.size())
    return fail(Code::InvalidArgument, "TPM2B_PUBLIC: size field " + std::to_string(declared) +
                                           " does not match " + std::to_string(in.size() - 2) + " bytes");
  TPM2B_PUBLIC pub{};
  std::size_t offset = 0;
  TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(in.data(), in.size(), &offset, &pub);
  if (rc != TSS2_RC_SUCCESS || offset != in.size())
    return fail(Code::InvalidArgument, "TPM2B_PUBLIC: malformed (tss2-mu rc " + hex16(rc) + ")");
  const TPMT_PUBLIC& p = pub.publicArea;
  TpmPublic out;
  out.type = p.type;
  out.name_alg = p.nameAlg;
  out.attributes = p.objectAttributes;
  if (hash_size(p.nameAlg) == 0)
    return fail(Code::Unsupported, "TPM2B_PUBLIC: nameAlg " + hex16(p.nameAlg) + " unsupported");
  out.name = MCIMD_TRY(tpm_name(p.nameAlg, in.subspan(2)));  // over the marshaled area as received

  if (p.type == TPM2_ALG_RSA) {
    const TPMS_RSA_PARMS& r = p.parameters.rsaDetail;
    out.symmetric = r.symmetric.algorithm;
    if (r.symmetric.algorithm != TPM2_ALG_NULL) {
      out.symmetric_bits = r.symmetric.keyBits.sym;
      out.symmetric_mode = r.symmetric.mode.sym;
    }
    out.scheme = r.scheme.scheme;
    if (r.scheme.scheme != TPM2_ALG_NULL) out.scheme_hash = r.scheme.details.anySig.hashAlg;
    out.rsa_bits = r.keyBits;
    if (r.keyBits < 2048 || r.keyBits > 4096 || pub.publicArea.unique.rsa.size * 8u != r.keyBits)
      return fail(Code::InvalidArgument, "TPM2B_PUBLIC: RSA modulus of " +
                                             std::to_string(pub.publicArea.unique.rsa.size * 8) +
                                             " bits (keyBits " + std::to_string(r.keyBits) + ")");
    out.key = MCIMD_TRY(rsa_key({p.unique.rsa.buffer, p.unique.rsa.size}, r.exponent));
  } else if (p.type == TPM2_ALG_ECC) {
    const TPMS_ECC_PARMS& e = p.parameters.eccDetail;
    out.symmetric = e.symmetric.algorithm;
    if (e.symmetric.algorithm != TPM2_ALG_NULL) {
      out.symmetric_bits = e.symmetric.keyBits.sym;
      out.symmetric_mode = e.symmetric.mode.sym;
    }
    out.scheme = e.scheme.scheme;
    if (e.scheme.scheme != TPM2_ALG_NULL) out.scheme_hash = e.scheme.details.anySig.hashAlg;
    out.curve = e.curveID;
    auto curve = curve_of(e.curveID);
    if (!curve) return fail(Code::Unsupported, "TPM2B_PUBLIC: ECC curve " + hex16(e.curveID) + " unsupported");
    out.ecc_x.assign(p.unique.ecc.x.buffer, p.unique.ecc.x.buffer + p.unique.ecc.x.size);
    out.ecc_y.assign(p.unique.ecc.y.buffer, p.unique.ecc.y.buffer + p.unique.ecc.y.size);
    out.key = MCIMD_TRY(ecc_key(*curve, out.ecc_x, out.ecc_y));
  } else {
    return fail(Code::Unsupported, "TPM2B_PUBLIC: key type " + hex16(p.type) + " is neither RSA nor ECC");
  }
  return out;
}

Status check_attestation_key(const TpmPublic& ak) {
  Missing missing;
  missing.need(ak.attributes & attr::kFixedTpm, "fixedTPM not set");
  missing.need(ak.attributes & attr::kFixedParent, "fixedParent not set");
  missing.need(ak.attributes & attr::kSensitiveDataOrigin, "sensitiveDataOrigin not set");
  missing.need(ak.attributes & attr::kRestricted, "restricted not set");
  missing.need(ak.attributes & attr::kSign, "sign not set");
  missing.need(!(ak.attributes & attr::kDecrypt), "decrypt set");
  if (ak.type == alg::kEcc) {
    missing.need(ak.curve == 0x0003, "ECC curve is not NIST P-256");
    missing.need(ak.scheme == alg::kEcdsa, "ECC scheme is not ECDSA");
  } else {
    missing.need(ak.scheme == alg::kRsassa || ak.scheme == alg::kRsapss, "RSA scheme is neither RSASSA nor RSAPSS");
  }
  missing.need(ak.scheme_hash == alg::kSha256, "scheme hash is not SHA-256");
  return missing.refuse_as("attestation key refused");
}

Status check_storage_key(const TpmPublic& key, std::string_view what) {
  Missing missing;
  missing.need(key.attributes & attr::kRestricted, "restricted not set");
  missing.need(key.attributes & attr::kDecrypt, "decrypt not set");
  missing.need(!(key.attributes & attr::kSign), "sign set");
  missing.need(key.symmetric == alg::kAes && key.symmetric_mode == alg::kCfb &&
                   (key.symmetric_bits == 128 || key.symmetric_bits == 192 || key.symmetric_bits == 256),
               "its symmetric algorithm for children is not AES-CFB");
  return missing.refuse_as(std::string(what) + " is not a restricted decryption (storage) key");
}

Result<Attest> parse_attest(std::span<const uint8_t> in) {
  if (in.empty()) return fail(Code::InvalidArgument, "TPMS_ATTEST: empty");
  TPMS_ATTEST a{};
  std::size_t offset = 0;
  TSS2_RC rc = Tss2_MU_TPMS_ATTEST_Unmarshal(in.data(), in.size(), &offset, &a);
  if (rc != TSS2_RC_SUCCESS) return fail(Code::InvalidArgument, "TPMS_ATTEST: malformed (tss2-mu rc " + hex16(rc) + ")");
  if (offset != in.size())
    return fail(Code::InvalidArgument, "TPMS_ATTEST: " + std::to_string(in.size() - offset) + " trailing bytes");
  Attest out;
  out.magic = a.magic;
  out.type = a.type;
  out.qualified_signer.assign(a.qualifiedSigner.name, a.qualifiedSigner.name + a.qualifiedSigner.size);
  out.extra_data.assign(a.extraData.buffer, a.extraData.buffer + a.extraData.size);
  out.clock = {a.clockInfo.clock, a.clockInfo.resetCount, a.clockInfo.restartCount, a.clockInfo.safe != 0};
  out.firmware_version = a.firmwareVersion;
  if (a.type == TPM2_ST_ATTEST_QUOTE) {
    const TPMS_QUOTE_INFO& q = a.attested.quote;
    for (uint32_t i = 0; i < q.pcrSelect.count && i < TPM2_NUM_PCR_BANKS; ++i) {
      const TPMS_PCR_SELECTION& s = q.pcrSelect.pcrSelections[i];
      PcrSelection sel{s.hash, {}};
      for (unsigned byte = 0; byte < s.sizeofSelect && byte < sizeof s.pcrSelect; ++byte)
        for (unsigned bit = 0; bit < 8; ++bit)
          if (s.pcrSelect[byte] & (1u << bit)) sel.pcrs.push_back(byte * 8 + bit);
      out.selection.push_back(std::move(sel));
    }
    out.pcr_digest.assign(q.pcrDigest.buffer, q.pcrDigest.buffer + q.pcrDigest.size);
  } else if (a.type == TPM2_ST_ATTEST_CERTIFY) {
    const TPMS_CERTIFY_INFO& c = a.attested.certify;
    out.certified_name.assign(c.name.name, c.name.name + c.name.size);
    out.certified_qualified_name.assign(c.qualifiedName.name, c.qualifiedName.name + c.qualifiedName.size);
  }
  return out;
}

Result<uint16_t> verify_signature(const TpmPublic& key, std::span<const uint8_t> message,
                                  std::span<const uint8_t> tpmt_signature) {
  if (tpmt_signature.empty()) return fail(Code::InvalidArgument, "TPMT_SIGNATURE: empty");
  TPMT_SIGNATURE sig{};
  std::size_t offset = 0;
  TSS2_RC rc = Tss2_MU_TPMT_SIGNATURE_Unmarshal(tpmt_signature.data(), tpmt_signature.size(), &offset, &sig);
  if (rc != TSS2_RC_SUCCESS || offset != tpmt_signature.size())
    return fail(Code::InvalidArgument, "TPMT_SIGNATURE: malformed (tss2-mu rc " + hex16(rc) + ")");
  uint16_t hash_alg = sig.signature.any.hashAlg;
  const EVP_MD* md = evp_md(hash_alg);
  if (!md || hash_alg == alg::kSha1)
    return fail(Code::Unsupported, "signature hash " + hex16(hash_alg) + " not accepted");
  if (key.scheme != alg::kNull && (sig.sigAlg != key.scheme || hash_alg != key.scheme_hash))
    return fail(Code::InvalidArgument, "signature scheme " + hex16(sig.sigAlg) + "/" + hex16(hash_alg) +
                                           " differs from the key's " + hex16(key.scheme) + "/" +
                                           hex16(key.scheme_hash));
  Bytes der;
  bool pss = false;
  if (sig.sigAlg == TPM2_ALG_ECDSA) {
    if (key.type != alg::kEcc) return fail(Code::InvalidArgument, "ECDSA signature from a non-ECC key");
    EcdsaSig es(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(sig.signature.ecdsa.signatureR.buffer, sig.signature.ecdsa.signatureR.size, nullptr);
    BIGNUM* s = BN_bin2bn(sig.signature.ecdsa.signatureS.buffer, sig.signature.ecdsa.signatureS.size, nullptr);
    if (!es || !r || !s || !ECDSA_SIG_set0(es.get(), r, s)) {
      BN_free(r);
      BN_free(s);
      return fail(Code::Internal, "ECDSA_SIG: " + openssl_error());
    }
    int len = i2d_ECDSA_SIG(es.get(), nullptr);
    if (len <= 0) return fail(Code::Internal, "i2d_ECDSA_SIG: " + openssl_error());
    der.resize(len);
    uint8_t* p = der.data();
    i2d_ECDSA_SIG(es.get(), &p);
  } else if (sig.sigAlg == TPM2_ALG_RSASSA || sig.sigAlg == TPM2_ALG_RSAPSS) {
    if (key.type != alg::kRsa) return fail(Code::InvalidArgument, "RSA signature from a non-RSA key");
    pss = sig.sigAlg == TPM2_ALG_RSAPSS;
    der.assign(sig.signature.rsassa.sig.buffer, sig.signature.rsassa.sig.buffer + sig.signature.rsassa.sig.size);
  } else {
    return fail(Code::Unsupported, "signature algorithm " + hex16(sig.sigAlg) + " unsupported");
  }
  EvpMdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key.key.get()) != 1)
    return fail(Code::Internal, "EVP_DigestVerifyInit: " + openssl_error());
  if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
              // The TPM picks the salt length (Part 1 Annex B.7); accept what the signature says.
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) <= 0))
    return fail(Code::Internal, "RSA-PSS parameters: " + openssl_error());
  int ok = EVP_DigestVerify(ctx.get(), der.data(), der.size(), message.data(), message.size());
  if (ok != 1) {
    ERR_clear_error();
    return fail(Code::InvalidArgument, "signature does not verify with the attestation key");
  }
  return hash_alg;
}

namespace {

// The SRK as mcimd's TPM layer creates it (TCG TPM v2.0 Provisioning Guidance §7.5.1 templates):
// a key a package may be made for only when its private part was born in the TPM and never left.
Status check_srk_public(const TpmPublic& srk) {
  MCIMD_CHECK(check_storage_key(srk, "the SRK"));
  Missing missing;
  missing.need(srk.attributes & attr::kFixedTpm, "fixedTPM not set");
  missing.need(srk.attributes & attr::kFixedParent, "fixedParent not set");
  missing.need(srk.attributes & attr::kSensitiveDataOrigin, "sensitiveDataOrigin not set");
  missing.need(srk.type == alg::kRsa ? srk.rsa_bits == 2048 : srk.curve == 0x0003,
               "neither ECC NIST P-256 nor RSA-2048");
  missing.need(srk.symmetric_bits == 128, "its symmetric algorithm for children is not AES-128");
  return missing.refuse_as("the SRK is not a storage key as mcimd uses");
}

}  // namespace

Result<ClockInfo> verify_srk_certification(std::span<const uint8_t> ak_public,
                                           const protocol::Certification& certification,
                                           std::span<const uint8_t> srk_public,
                                           std::span<const uint8_t> expected_qualifying_data) {
  auto refuse = [](Code code, std::string_view check, const std::string& reason) {
    return fail(code, "SRK certification refused: " + std::string(check) + ": " + reason);
  };
  auto ak = parse_tpm_public(ak_public);
  if (!ak) return refuse(Code::InvalidArgument, "ak", ak.error().message);
  if (auto ok = check_attestation_key(*ak); !ok) return refuse(Code::InvalidArgument, "ak", ok.error().message);
  auto srk = parse_tpm_public(srk_public);
  if (!srk) return refuse(Code::InvalidArgument, "srk", srk.error().message);
  if (auto ok = check_srk_public(*srk); !ok) return refuse(Code::InvalidArgument, "srk", ok.error().message);

  auto attest = parse_attest(certification.message);
  if (!attest) return refuse(Code::InvalidArgument, "format", attest.error().message);
  if (auto verified = verify_signature(*ak, certification.message, certification.signature); !verified)
    return refuse(Code::SignatureInvalid, "signature", verified.error().message);
  if (attest->magic != kTpmGeneratedValue)
    return refuse(Code::InvalidArgument, "magic", "magic is not TPM_GENERATED_VALUE: not produced by a TPM");
  if (attest->type != kTpmStAttestCertify)
    return refuse(Code::InvalidArgument, "type", "attestation type " + hex16(attest->type) +
                                                     " is not TPM_ST_ATTEST_CERTIFY");
  if (expected_qualifying_data.empty())
    return refuse(Code::InvalidArgument, "qualifying_data", "the verifier expects no qualifying data");
  if (!std::equal(attest->extra_data.begin(), attest->extra_data.end(), expected_qualifying_data.begin(),
                  expected_qualifying_data.end()))
    return refuse(Code::Replayed, "qualifying_data",
                  "extraData is not the expected qualifying data: made for other nonces or another purpose");
  if (attest->certified_name != srk->name)
    return refuse(Code::WrongDevice, "name",
                  "the certified key is not the SRK presented (name " + to_hex(attest->certified_name) + ", SRK " +
                      to_hex(srk->name) + ")");
  return attest->clock;
}

}  // namespace mcimd::attestation
