#include "attestation/jws.hpp"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <nlohmann/json.hpp>

#include "attestation/verifier_tpm.hpp"
#include "common/c_handle.hpp"

namespace mcimd::attestation {

namespace {

using EvpMdCtx = CHandle<EVP_MD_CTX, EVP_MD_CTX_free>;
using EcdsaSig = CHandle<ECDSA_SIG, ECDSA_SIG_free>;
using X509Ptr = CHandle<X509, X509_free>;
using StoreCtx = CHandle<X509_STORE_CTX, X509_STORE_CTX_free>;
void free_x509_stack(STACK_OF(X509) * s) { sk_X509_free(s); }  // sk_X509_free is a macro
using X509Stack = CHandle<STACK_OF(X509), free_x509_stack>;
using Asn1Object = CHandle<ASN1_OBJECT, ASN1_OBJECT_free>;
using ExtendedKeyUsage = CHandle<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>;

constexpr std::size_t kMaxJws = 1u << 20;
constexpr std::size_t kMaxChain = 8;

// RFC 7515 §4.1.6: x5c entries are base64 (not base64url) DER.
std::string base64_encode(std::span<const uint8_t> data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(), static_cast<int>(data.size()));
  out.resize(n);
  return out;
}

Result<Bytes> base64_decode(const std::string& text) {
  if (text.empty() || text.size() % 4 != 0) return fail(Code::InvalidArgument, "JWS x5c entry is not base64");
  Bytes out(text.size() / 4 * 3);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return fail(Code::InvalidArgument, "JWS x5c entry is not base64");
  std::size_t pad = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  out.resize(std::size_t(n) - pad);
  return out;
}

Result<X509Ptr> parse_der(const Bytes& der) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || p != der.data() + der.size()) {
    ERR_clear_error();
    return fail(Code::InvalidArgument, "JWS x5c entry is not a DER certificate");
  }
  return cert;
}

struct Parsed {
  std::string_view signing_input;
  JwsContent content;
  Bytes signature;
};

Result<Parsed> split(std::string_view compact) {
  if (compact.size() > kMaxJws) return fail(Code::InvalidArgument, "JWS larger than 1 MiB");
  std::size_t d1 = compact.find('.');
  std::size_t d2 = d1 == std::string_view::npos ? d1 : compact.find('.', d1 + 1);
  if (d2 == std::string_view::npos || compact.find('.', d2 + 1) != std::string_view::npos)
    return fail(Code::InvalidArgument, "JWS is not three dot-separated parts");
  Parsed out;
  out.signing_input = compact.substr(0, d2);
  Bytes header = MCIMD_TRY(base64url_decode(compact.substr(0, d1), "JWS header"));
  out.content.payload = MCIMD_TRY(base64url_decode(compact.substr(d1 + 1, d2 - d1 - 1), "JWS payload"));
  out.signature = MCIMD_TRY(base64url_decode(compact.substr(d2 + 1), "JWS signature"));
  nlohmann::json h = nlohmann::json::parse(header.begin(), header.end(), nullptr, /*allow_exceptions=*/false);
  if (!h.is_object()) return fail(Code::InvalidArgument, "JWS header is not a JSON object");
  // RFC 7515 §10.7: accept exactly the algorithm we expect, never what the header would like.
  if (!h.contains("alg") || h["alg"] != "ES256") return fail(Code::InvalidArgument, "JWS alg is not ES256");
  if (h.contains("crit")) return fail(Code::InvalidArgument, "JWS header has critical extensions");
  if (h.contains("x5c")) {
    const auto& chain = h["x5c"];
    if (!chain.is_array() || chain.empty() || chain.size() > kMaxChain)
      return fail(Code::InvalidArgument, "JWS x5c is not a list of 1.." + std::to_string(kMaxChain) + " certificates");
    for (const auto& entry : chain) {
      if (!entry.is_string()) return fail(Code::InvalidArgument, "JWS x5c entry is not a string");
      out.content.x5c.push_back(MCIMD_TRY(base64_decode(entry.get<std::string>())));
    }
  }
  if (out.signature.size() != 64) return fail(Code::InvalidArgument, "ES256 signature is not 64 bytes");
  return out;
}

// `refusal`: the code for a signature that does not verify (the older forms say NotAuthorized).
Status check_signature(const Parsed& p, EVP_PKEY* key, Code refusal = Code::NotAuthorized) {
  if (!is_p256(key)) return fail(Code::InvalidArgument, "JWS key is not EC P-256");
  EcdsaSig sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(p.signature.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(p.signature.data() + 32, 32, nullptr);
  if (!sig || !r || !s || !ECDSA_SIG_set0(sig.get(), r, s)) {
    BN_free(r);
    BN_free(s);
    return fail(Code::Internal, "ECDSA_SIG: " + openssl_error());
  }
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return fail(Code::Internal, "i2d_ECDSA_SIG: " + openssl_error());
  Bytes der_sig(der, der + len);
  OPENSSL_free(der);
  EvpMdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1)
    return fail(Code::Internal, "EVP_DigestVerifyInit: " + openssl_error());
  if (EVP_DigestVerify(ctx.get(), der_sig.data(), der_sig.size(),
                       reinterpret_cast<const unsigned char*>(p.signing_input.data()), p.signing_input.size()) != 1) {
    ERR_clear_error();
    return fail(refusal, "JWS signature does not verify");
  }
  return {};
}

// Whether a certificate's extendedKeyUsage lists `purpose` (or, where any_ok, anyExtendedKeyUsage).
// nullopt when it has no such extension; false also for one OpenSSL cannot decode or finds twice.
std::optional<bool> eku_lists(X509* cert, const ASN1_OBJECT* purpose, bool any_ok) {
  int critical = 0;
  ExtendedKeyUsage eku(static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, &critical, nullptr)));
  if (!eku) {
    ERR_clear_error();
    if (critical == -1) return std::nullopt;
    return false;
  }
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
    const ASN1_OBJECT* listed = sk_ASN1_OBJECT_value(eku.get(), i);
    if (OBJ_cmp(listed, purpose) == 0) return true;
    if (any_ok && OBJ_obj2nid(listed) == NID_anyExtendedKeyUsage) return true;
  }
  return false;
}

// RFC 5280 §4.2.1.12: the leaf must name the purpose itself; a CA above it that restricts its
// own extendedKeyUsage must include the purpose too (a CA for TLS servers does not issue document
// signers). RFC 5280 §4.2.1.3: a leaf keyUsage, when present, must allow digitalSignature.
Status check_purpose(X509* leaf, STACK_OF(X509) * chain, const std::string& oid) {
  Asn1Object purpose(OBJ_txt2obj(oid.c_str(), /*no_name=*/1));
  if (!purpose) {
    ERR_clear_error();
    return fail(Code::InvalidArgument, "Required key purpose " + oid + " is not a dotted OID");
  }
  if (eku_lists(leaf, purpose.get(), /*any_ok=*/false) != true)
    return fail(Code::UntrustedSigner, "JWS signer certificate is not for key purpose " + oid +
                                           ": its extendedKeyUsage does not list it");
  if (!(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
    return fail(Code::UntrustedSigner, "JWS signer certificate is not for key purpose " + oid +
                                           ": its keyUsage does not allow digitalSignature");
  for (int i = 1; i < sk_X509_num(chain); ++i)
    if (eku_lists(sk_X509_value(chain, i), purpose.get(), /*any_ok=*/true) == false)
      return fail(Code::UntrustedSigner, "JWS signer certificate's issuer at depth " + std::to_string(i) +
                                             " is not for key purpose " + oid);
  return {};
}

}  // namespace

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64];
  std::size_t len = 0;
  return EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &len) == 1 &&
         std::string_view(group, len) == "prime256v1";
}

Result<std::string> jws_sign(std::span<const uint8_t> payload, EVP_PKEY* key, const std::vector<Bytes>& x5c_der) {
  if (!key || !is_p256(key)) return fail(Code::InvalidArgument, "ES256 needs an EC P-256 key");
  nlohmann::json header = {{"alg", "ES256"}};
  if (!x5c_der.empty()) {
    header["x5c"] = nlohmann::json::array();
    for (const auto& der : x5c_der) header["x5c"].push_back(base64_encode(der));
  }
  std::string h = header.dump();
  std::string input = base64url_encode({reinterpret_cast<const uint8_t*>(h.data()), h.size()}) + "." +
                      base64url_encode(payload);
  EvpMdCtx ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    return fail(Code::Internal, "EVP_DigestSign: " + openssl_error());
  Bytes der(len);
  if (EVP_DigestSign(ctx.get(), der.data(), &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    return fail(Code::Internal, "EVP_DigestSign: " + openssl_error());
  const unsigned char* p = der.data();
  EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  if (!sig) return fail(Code::Internal, "d2i_ECDSA_SIG: " + openssl_error());
  // RFC 7518 §3.4: R and S as 32-byte big-endian integers.
  Bytes raw(64);
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw.data(), 32) != 32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw.data() + 32, 32) != 32)
    return fail(Code::Internal, "ECDSA signature does not fit 64 bytes");
  return input + "." + base64url_encode(raw);
}

Result<JwsContent> jws_verify(std::string_view compact, const JwsTrust& trust) {
  Parsed p = MCIMD_TRY(split(compact));
  if (p.content.x5c.empty()) return fail(Code::InvalidArgument, "JWS header has no x5c chain");
  X509Ptr leaf = MCIMD_TRY(parse_der(p.content.x5c[0]));
  MCIMD_CHECK(check_signature(p, X509_get0_pubkey(leaf.get()), Code::SignatureInvalid));
  if (!trust.anchors.store()) return fail(Code::ConfigError, "no JWS trust anchors configured");
  X509Stack untrusted(sk_X509_new_null());
  std::vector<X509Ptr> keep;
  for (std::size_t i = 1; i < p.content.x5c.size(); ++i) {
    keep.push_back(MCIMD_TRY(parse_der(p.content.x5c[i])));
    sk_X509_push(untrusted.get(), keep.back().get());
  }
  StoreCtx ctx(X509_STORE_CTX_new());
  if (!ctx || !untrusted || X509_STORE_CTX_init(ctx.get(), trust.anchors.store(), leaf.get(), untrusted.get()) != 1)
    return fail(Code::Internal, "X509_STORE_CTX_init: " + openssl_error());
  if (trust.at) X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(trust.at->time_since_epoch().count()));
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return fail(Code::UntrustedSigner, std::string("JWS signer certificate: ") + X509_verify_cert_error_string(err));
  }
  if (trust.required_eku_oid)
    MCIMD_CHECK(check_purpose(leaf.get(), X509_STORE_CTX_get0_chain(ctx.get()), *trust.required_eku_oid));
  return std::move(p.content);
}

Result<JwsContent> jws_verify(std::string_view compact, const CaBundle& trust) {
  auto content = jws_verify(compact, JwsTrust{trust, std::nullopt, std::nullopt});
  if (!content && (content.error().code == Code::SignatureInvalid || content.error().code == Code::UntrustedSigner))
    return fail(Code::NotAuthorized, std::move(content.error().message));
  return content;
}

Result<JwsContent> jws_verify_as_signed(std::string_view compact) {
  Parsed p = MCIMD_TRY(split(compact));
  if (p.content.x5c.empty()) return fail(Code::InvalidArgument, "JWS header has no x5c chain");
  X509Ptr leaf = MCIMD_TRY(parse_der(p.content.x5c[0]));
  MCIMD_CHECK(check_signature(p, X509_get0_pubkey(leaf.get())));
  return std::move(p.content);
}

Result<JwsContent> jws_verify(std::string_view compact, EVP_PKEY* key) {
  Parsed p = MCIMD_TRY(split(compact));
  if (!key) return fail(Code::InvalidArgument, "no JWS verification key");
  MCIMD_CHECK(check_signature(p, key));
  return std::move(p.content);
}

}  // namespace mcimd::attestation
