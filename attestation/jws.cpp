#include "attestation/jws.hpp"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

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

Status check_signature(const Parsed& p, EVP_PKEY* key) {
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
    return fail(Code::NotAuthorized, "JWS signature does not verify");
  }
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

Result<JwsContent> jws_verify(std::string_view compact, const CaBundle& trust) {
  Parsed p = MCIMD_TRY(split(compact));
  if (p.content.x5c.empty()) return fail(Code::InvalidArgument, "JWS header has no x5c chain");
  if (!trust.store()) return fail(Code::ConfigError, "no JWS trust anchors configured");
  X509Ptr leaf = MCIMD_TRY(parse_der(p.content.x5c[0]));
  X509Stack untrusted(sk_X509_new_null());
  std::vector<X509Ptr> keep;
  for (std::size_t i = 1; i < p.content.x5c.size(); ++i) {
    keep.push_back(MCIMD_TRY(parse_der(p.content.x5c[i])));
    sk_X509_push(untrusted.get(), keep.back().get());
  }
  StoreCtx ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), trust.store(), leaf.get(), untrusted.get()) != 1)
    return fail(Code::Internal, "X509_STORE_CTX_init: " + openssl_error());
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return fail(Code::NotAuthorized, std::string("JWS signer certificate: ") + X509_verify_cert_error_string(err));
  }
  MCIMD_CHECK(check_signature(p, X509_get0_pubkey(leaf.get())));
  return std::move(p.content);
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
