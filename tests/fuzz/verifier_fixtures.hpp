#pragma once
// Test material for the verifier, built in software: crypto-agile event logs, TPM2B_PUBLIC areas
// for OpenSSL keys, quotes signed like a TPM signs them, and a CA that issues EK certificates.
// Header-only so the unit tests, integration tests and fuzz seed writer share it.
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "attestation/credential.hpp"
#include "attestation/uefi_events.hpp"
#include "attestation/verifier_tpm.hpp"
#include "common/bytes.hpp"
#include "protocol/evidence.hpp"
#include "protocol/provisioning.hpp"
#include "protocol/quote_domain.hpp"

namespace mcimd::test::verifier {

using attestation::EvpPkey;

inline Bytes sha(uint16_t alg, std::span<const uint8_t> data) { return *attestation::hash(alg, data); }
inline Bytes sha(uint16_t alg, std::string_view s) {
  return sha(alg, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}
inline Bytes extend(uint16_t alg, const Bytes& pcr, const Bytes& digest) {
  Bytes in = pcr;
  in.insert(in.end(), digest.begin(), digest.end());
  return sha(alg, in);
}

// A TCG PC Client crypto-agile log (PFP §10.2), little-endian.
class EventLogBuilder {
 public:
  explicit EventLogBuilder(std::vector<uint16_t> banks = {attestation::alg::kSha1, attestation::alg::kSha256})
      : banks_(std::move(banks)) {
    Bytes spec;
    const char sig[16] = "Spec ID Event03";
    spec.insert(spec.end(), sig, sig + 16);
    put32(spec, 0);  // platformClass: client
    spec.push_back(0);  // specVersionMinor
    spec.push_back(2);  // specVersionMajor
    spec.push_back(0);  // specErrata
    spec.push_back(2);  // uintnSize: UINT64
    put32(spec, uint32_t(banks_.size()));
    for (uint16_t b : banks_) {
      put16(spec, b);
      put16(spec, uint16_t(attestation::hash_size(b)));
    }
    spec.push_back(0);  // vendorInfoSize
    put32(log_, 0);
    put32(log_, 3);  // EV_NO_ACTION
    log_.insert(log_.end(), 20, 0);
    put32(log_, uint32_t(spec.size()));
    log_.insert(log_.end(), spec.begin(), spec.end());
  }
  // An event whose digests are H(data) in every bank; returns the per-bank digests.
  std::vector<Bytes> add(uint32_t pcr, uint32_t type, std::string_view data) {
    std::vector<Bytes> digests;
    for (uint16_t b : banks_) digests.push_back(sha(b, data));
    add_digests(pcr, type, digests, data);
    return digests;
  }
  void add_digests(uint32_t pcr, uint32_t type, const std::vector<Bytes>& digests, std::string_view data) {
    put32(log_, pcr);
    put32(log_, type);
    put32(log_, uint32_t(banks_.size()));
    for (std::size_t i = 0; i < banks_.size(); ++i) {
      put16(log_, banks_[i]);
      log_.insert(log_.end(), digests[i].begin(), digests[i].end());
    }
    put32(log_, uint32_t(data.size()));
    log_.insert(log_.end(), data.begin(), data.end());
  }
  // A UEFI variable measured as firmware does for DRIVER_CONFIG/AUTHORITY/BOOT2: digests over the
  // whole UEFI_VARIABLE_DATA (PFP §10.2.6). Returns the per-bank digests.
  std::vector<Bytes> add_variable(uint32_t pcr, uint32_t type, const attestation::Guid& guid, std::string_view name,
                                  const Bytes& data) {
    const Bytes v = uefi_variable(guid, name, data);
    return add(pcr, type, std::string_view(reinterpret_cast<const char*>(v.data()), v.size()));
  }
  // EV_EFI_VARIABLE_BOOT the EDK2 way: digests over VariableData only.
  std::vector<Bytes> add_boot_variable_data_only(std::string_view name, const Bytes& data) {
    std::vector<Bytes> digests;
    for (uint16_t b : banks_) digests.push_back(sha(b, data));
    const Bytes v = uefi_variable(attestation::kEfiGlobalVariable, name, data);
    add_digests(1, 0x80000002, digests, std::string_view(reinterpret_cast<const char*>(v.data()), v.size()));
    return digests;
  }
  // EV_EFI_BOOT_SERVICES_APPLICATION in PCR 4 for an image whose Authenticode digest is H(image)
  // in each bank, with a device path holding one Media File Path node (PFP §10.2.3).
  std::vector<Bytes> add_application(std::string_view path, std::string_view image) {
    std::vector<Bytes> digests;
    for (uint16_t b : banks_) digests.push_back(sha(b, image));
    const Bytes e = image_load_event(path);
    add_digests(4, 0x80000003, digests, std::string_view(reinterpret_cast<const char*>(e.data()), e.size()));
    return digests;
  }
  static Bytes uefi_variable(const attestation::Guid& guid, std::string_view name, const Bytes& data) {
    Bytes v(guid.begin(), guid.end());
    put64(v, name.size());
    put64(v, data.size());
    for (char c : name) put16(v, uint8_t(c));
    v.insert(v.end(), data.begin(), data.end());
    return v;
  }
  static Bytes image_load_event(std::string_view path) {
    Bytes node = {0x04, 0x04, 0, 0};  // Media / File Path (UEFI 2.x §10.3.5.4)
    for (char c : path) put16(node, uint8_t(c));
    put16(node, 0);
    node[2] = uint8_t(node.size());
    node[3] = uint8_t(node.size() >> 8);
    const Bytes end = {0x7F, 0xFF, 0x04, 0x00};
    Bytes e;
    put64(e, 0x7e000000);  // ImageLocationInMemory
    put64(e, 0x100000);    // ImageLengthInMemory
    put64(e, 0);           // ImageLinkTimeAddress
    put64(e, node.size() + end.size());
    e.insert(e.end(), node.begin(), node.end());
    e.insert(e.end(), end.begin(), end.end());
    return e;
  }
  void startup_locality(uint8_t locality) {
    std::string data("StartupLocality\0", 16);
    data.push_back(char(locality));
    std::vector<Bytes> zeros;
    for (uint16_t b : banks_) zeros.emplace_back(attestation::hash_size(b), 0);
    add_digests(0, 3, zeros, data);
  }
  const Bytes& bytes() const { return log_; }
  static void put16(Bytes& b, uint16_t v) {
    b.push_back(uint8_t(v));
    b.push_back(uint8_t(v >> 8));
  }
  static void put32(Bytes& b, uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i)));
  }
  static void put64(Bytes& b, uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(uint8_t(v >> (8 * i)));
  }

 private:
  std::vector<uint16_t> banks_;
  Bytes log_;
};

inline Bytes bn_param(EVP_PKEY* key, const char* name, std::size_t pad) {
  BIGNUM* bn = nullptr;
  if (!EVP_PKEY_get_bn_param(key, name, &bn)) throw std::runtime_error("EVP_PKEY_get_bn_param");
  Bytes out(pad ? pad : std::size_t(BN_num_bytes(bn)));
  BN_bn2binpad(bn, out.data(), int(out.size()));
  BN_free(bn);
  return out;
}

inline EvpPkey ec_key() { return EvpPkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }
inline EvpPkey rsa_key() { return EvpPkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})); }

// TPMA_OBJECT sets of the TCG EK template and a tpm2_createak key (Part 2 §8.3).
inline constexpr uint32_t kEkAttributes = 0x000300B2;  // fixedTPM|fixedParent|sensitiveDataOrigin|adminWithPolicy|restricted|decrypt
inline constexpr uint32_t kAkAttributes = 0x00050072;  // fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign

// TPM2B_PUBLIC for an OpenSSL key: storage keys get AES-128-CFB and no scheme; signing keys
// ECDSA-SHA256 (ECC) or `rsa_scheme`-SHA256 (RSA).
inline Bytes tpm_public(EVP_PKEY* key, uint32_t attributes, uint16_t rsa_scheme = TPM2_ALG_RSASSA) {
  TPM2B_PUBLIC pub{};
  TPMT_PUBLIC& p = pub.publicArea;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = attributes;
  bool storage = attributes & TPMA_OBJECT_DECRYPT && attributes & TPMA_OBJECT_RESTRICTED;
  TPMT_SYM_DEF_OBJECT sym{};
  sym.algorithm = TPM2_ALG_NULL;
  if (storage) {
    sym.algorithm = TPM2_ALG_AES;
    sym.keyBits.aes = 128;
    sym.mode.aes = TPM2_ALG_CFB;
  }
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    p.type = TPM2_ALG_ECC;
    p.parameters.eccDetail.symmetric = sym;
    p.parameters.eccDetail.scheme.scheme = storage ? TPM2_ALG_NULL : TPM2_ALG_ECDSA;
    if (!storage) p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    Bytes x = bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, 32), y = bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    p.unique.ecc.x.size = 32;
    std::memcpy(p.unique.ecc.x.buffer, x.data(), 32);
    p.unique.ecc.y.size = 32;
    std::memcpy(p.unique.ecc.y.buffer, y.data(), 32);
  } else {
    p.type = TPM2_ALG_RSA;
    p.parameters.rsaDetail.symmetric = sym;
    p.parameters.rsaDetail.scheme.scheme = storage ? TPM2_ALG_NULL : rsa_scheme;
    if (!storage) p.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.rsaDetail.keyBits = 2048;
    p.parameters.rsaDetail.exponent = 0;
    Bytes n = bn_param(key, OSSL_PKEY_PARAM_RSA_N, 256);
    p.unique.rsa.size = 256;
    std::memcpy(p.unique.rsa.buffer, n.data(), 256);
  }
  Bytes out(sizeof(TPM2B_PUBLIC));
  std::size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, out.data(), out.size(), &off) != TSS2_RC_SUCCESS)
    throw std::runtime_error("Tss2_MU_TPM2B_PUBLIC_Marshal");
  out.resize(off);
  return out;
}

struct QuoteSpec {
  Bytes nonce;  // the quote's extraData (qualifying data): see evidence_qualifying_data
  std::vector<std::pair<uint16_t, std::vector<unsigned>>> selection;  // bank → PCRs
  Bytes pcr_digest;
  uint64_t clock = 1000;
  uint32_t reset_count = 1;
  uint32_t restart_count = 0;
  uint32_t magic = TPM2_GENERATED_VALUE;
  uint16_t type = TPM2_ST_ATTEST_QUOTE;
};

// The qualifying data mcimd quotes with for an operator's nonce (protocol/quote_domain.hpp).
inline Bytes evidence_qualifying_data(const Bytes& nonce) {
  return protocol::qualifying_data(protocol::QuoteDomain::OperatorEvidence, nonce);
}

inline Bytes attest_message(const QuoteSpec& q) {
  TPMS_ATTEST a{};
  a.magic = q.magic;
  a.type = q.type;
  a.qualifiedSigner.size = 34;
  a.extraData.size = uint16_t(q.nonce.size());
  if (!q.nonce.empty()) std::memcpy(a.extraData.buffer, q.nonce.data(), q.nonce.size());
  a.clockInfo.clock = q.clock;
  a.clockInfo.resetCount = q.reset_count;
  a.clockInfo.restartCount = q.restart_count;
  a.clockInfo.safe = 1;
  a.firmwareVersion = 0x2023;
  a.attested.quote.pcrSelect.count = uint32_t(q.selection.size());
  for (std::size_t i = 0; i < q.selection.size(); ++i) {
    auto& s = a.attested.quote.pcrSelect.pcrSelections[i];
    s.hash = q.selection[i].first;
    s.sizeofSelect = 3;
    for (unsigned pcr : q.selection[i].second) s.pcrSelect[pcr / 8] |= uint8_t(1u << (pcr % 8));
  }
  a.attested.quote.pcrDigest.size = uint16_t(q.pcr_digest.size());
  if (!q.pcr_digest.empty()) std::memcpy(a.attested.quote.pcrDigest.buffer, q.pcr_digest.data(), q.pcr_digest.size());
  Bytes out(sizeof(TPMS_ATTEST) + 64);
  std::size_t off = 0;
  if (Tss2_MU_TPMS_ATTEST_Marshal(&a, out.data(), out.size(), &off) != TSS2_RC_SUCCESS)
    throw std::runtime_error("Tss2_MU_TPMS_ATTEST_Marshal");
  out.resize(off);
  return out;
}

// TPMT_SIGNATURE over message as the TPM makes it with `key` (ECDSA or RSASSA, SHA-256).
inline Bytes tpm_sign(EVP_PKEY* key, const Bytes& message) {
  auto* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  EVP_DigestSign(ctx, nullptr, &len, message.data(), message.size());
  Bytes sig(len);
  EVP_DigestSign(ctx, sig.data(), &len, message.data(), message.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  TPMT_SIGNATURE t{};
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    const unsigned char* p = sig.data();
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, long(sig.size()));
    t.sigAlg = TPM2_ALG_ECDSA;
    t.signature.ecdsa.hash = TPM2_ALG_SHA256;
    t.signature.ecdsa.signatureR.size = 32;
    BN_bn2binpad(ECDSA_SIG_get0_r(es), t.signature.ecdsa.signatureR.buffer, 32);
    t.signature.ecdsa.signatureS.size = 32;
    BN_bn2binpad(ECDSA_SIG_get0_s(es), t.signature.ecdsa.signatureS.buffer, 32);
    ECDSA_SIG_free(es);
  } else {
    t.sigAlg = TPM2_ALG_RSASSA;
    t.signature.rsassa.hash = TPM2_ALG_SHA256;
    t.signature.rsassa.sig.size = uint16_t(sig.size());
    std::memcpy(t.signature.rsassa.sig.buffer, sig.data(), sig.size());
  }
  Bytes out(sizeof(TPMT_SIGNATURE));
  std::size_t off = 0;
  Tss2_MU_TPMT_SIGNATURE_Marshal(&t, out.data(), out.size(), &off);
  out.resize(off);
  return out;
}

// Evidence as mcimd makes it for `nonce`: a quote by `ak` over `pcrs` of one bank (ascending),
// in the operator-evidence domain, with the values and the AK public beside it.
inline protocol::Evidence signed_evidence(EVP_PKEY* ak, const Bytes& nonce, uint16_t bank,
                                          const std::map<unsigned, Bytes>& pcrs, QuoteSpec q = {}) {
  protocol::Evidence ev;
  ev.nonce = nonce;
  ev.ak_public = tpm_public(ak, kAkAttributes);
  ev.pcrs = {{attestation::hash_alg_name(bank), pcrs}};
  Bytes concat;
  std::vector<unsigned> selected;
  for (const auto& [pcr, value] : pcrs) {
    concat.insert(concat.end(), value.begin(), value.end());
    selected.push_back(pcr);
  }
  q.nonce = evidence_qualifying_data(nonce);
  q.selection = {{bank, selected}};
  q.pcr_digest = sha(attestation::alg::kSha256, concat);
  ev.quote_message = attest_message(q);
  ev.quote_signature = tpm_sign(ak, ev.quote_message);
  return ev;
}

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

inline void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) throw std::runtime_error(std::string("extension ") + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A raw extension by OID with DER contents.
inline void add_raw_ext(X509* cert, const char* oid, bool critical, const Bytes& der) {
  ASN1_OBJECT* obj = OBJ_txt2obj(oid, 1);
  ASN1_OCTET_STRING* os = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(os, der.data(), int(der.size()));
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj, critical, os);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  ASN1_OCTET_STRING_free(os);
  ASN1_OBJECT_free(obj);
}

struct TestCa {
  EvpPkey key{ec_key()};
  X509Ptr cert{X509_new(), X509_free};
  explicit TestCa(const std::string& cn = "mcimd test TPM manufacturer CA") {
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600L * 24 * 365);
    X509_set_pubkey(cert.get(), key.get());
    add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
    X509_sign(cert.get(), key.get(), EVP_sha256());
  }
  Bytes der() const {
    Bytes out(static_cast<std::size_t>(i2d_X509(cert.get(), nullptr)));
    unsigned char* p = out.data();
    i2d_X509(cert.get(), &p);
    return out;
  }
  std::string pem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert.get());
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, std::size_t(n));
    BIO_free(bio);
    return out;
  }
  // An EK certificate in the TCG EK Credential Profile shape: empty subject, critical SAN with
  // the TPM manufacturer attributes, critical subjectDirectoryAttributes (TPM specification),
  // and optionally another critical extension OpenSSL does not know.
  Bytes issue_ek(EVP_PKEY* ek, const char* extra_critical_oid = nullptr) const {
    X509Ptr c(X509_new(), X509_free);
    X509_set_version(c.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c.get()), 42);
    X509_set_issuer_name(c.get(), X509_get_subject_name(cert.get()));
    X509_gmtime_adj(X509_getm_notBefore(c.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(c.get()), 3600L * 24 * 365);
    X509_set_pubkey(c.get(), ek);
    add_ext(c.get(), cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_ext(c.get(), cert.get(), NID_key_usage, "critical,keyEncipherment");
    add_ext(c.get(), cert.get(), NID_authority_key_identifier, "keyid");
    // SAN directoryName { tcg-at-tpmManufacturer, tcg-at-tpmModel, tcg-at-tpmVersion } (2.23.133.2.1-3).
    {
      X509_NAME* dn = X509_NAME_new();
      const char* attrs[][2] = {{"2.23.133.2.1", "id:4D43494D"}, {"2.23.133.2.2", "mcimd-test"}, {"2.23.133.2.3", "id:00010002"}};
      for (auto& a : attrs) {
        ASN1_OBJECT* obj = OBJ_txt2obj(a[0], 1);
        X509_NAME_add_entry_by_OBJ(dn, obj, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(a[1]), -1, -1, 0);
        ASN1_OBJECT_free(obj);
      }
      GENERAL_NAME* gn = GENERAL_NAME_new();
      GENERAL_NAME_set0_value(gn, GEN_DIRNAME, dn);
      GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
      sk_GENERAL_NAME_push(names, gn);
      X509_add1_ext_i2d(c.get(), NID_subject_alt_name, names, /*crit=*/1, X509V3_ADD_DEFAULT);
      GENERAL_NAMES_free(names);
    }
    // subjectDirectoryAttributes { tcg-at-tpmSpecification (2.23.133.2.16) { "2.0", level 0, revision 164 } }
    const Bytes sda = {0x30, 0x19, 0x30, 0x17, 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x10, 0x31, 0x0e, 0x30,
                       0x0c, 0x0c, 0x03, '2',  '.',  '0',  0x02, 0x01, 0x00, 0x02, 0x02, 0x00, 0xa4};
    add_raw_ext(c.get(), "2.5.29.9", true, sda);
    if (extra_critical_oid) add_raw_ext(c.get(), extra_critical_oid, true, Bytes{0x05, 0x00});
    X509_sign(c.get(), key.get(), EVP_sha256());
    int len = i2d_X509(c.get(), nullptr);
    Bytes der(static_cast<std::size_t>(len));
    unsigned char* p = der.data();
    i2d_X509(c.get(), &p);
    return der;
  }
};

// The receiving side of an RSA seed (TPM 2.0 Part 1 Annex B.10.4): RSA-OAEP with SHA-256 and
// `label` with its NUL. Returns EVP_PKEY_decrypt's result; on success `seed` is the plaintext.
inline int oaep_decrypt_seed(EVP_PKEY* key, const char* label, std::span<const uint8_t> secret, SecureBytes& seed) {
  auto* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
  EVP_PKEY_decrypt_init(ctx);
  EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING);
  EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256());
  const std::size_t label_size = std::strlen(label) + 1;
  EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, OPENSSL_memdup(label, label_size), static_cast<int>(label_size));
  std::size_t len = 512;
  seed.resize(len);
  const int rc = EVP_PKEY_decrypt(ctx, seed.data(), &len, secret.data(), secret.size());
  EVP_PKEY_CTX_free(ctx);
  if (rc == 1) seed.resize(len);
  return rc;
}

// The receiving side of an ECC seed (Part 1 Annex C.6.2): Z, the x coordinate of the P-256 key's
// ECDH with the sender's ephemeral point (x, y).
struct Ecdh {
  int point_rc = 0;   // EVP_PKEY_fromdata for the point; 1 is success
  int derive_rc = 0;  // EVP_PKEY_derive; 1 is success
  SecureBytes z;
};
inline Ecdh ecdh_with_point(EVP_PKEY* key, const Bytes& x, const Bytes& y) {
  Ecdh out;
  Bytes pt{0x04};
  pt.insert(pt.end(), x.begin(), x.end());
  pt.insert(pt.end(), y.begin(), y.end());
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("group", const_cast<char*>("prime256v1"), 0),
                         OSSL_PARAM_construct_octet_string("pub", pt.data(), pt.size()), OSSL_PARAM_construct_end()};
  auto* fctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* point = nullptr;
  EVP_PKEY_fromdata_init(fctx);
  out.point_rc = EVP_PKEY_fromdata(fctx, &point, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(fctx);
  auto* dctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
  EVP_PKEY_derive_init(dctx);
  EVP_PKEY_derive_set_peer(dctx, point);
  std::size_t zlen = 32;
  out.z.resize(zlen);
  out.derive_rc = EVP_PKEY_derive(dctx, out.z.data(), &zlen);
  EVP_PKEY_CTX_free(dctx);
  EVP_PKEY_free(point);
  return out;
}

// A big-endian TPM2B reader over a challenge's wire bytes (Part 2 §10.4).
struct Tpm2bReader {
  std::span<const uint8_t> d;
  Bytes tpm2b() {
    if (d.size() < 2) throw std::runtime_error("short");
    std::size_t n = (d[0] << 8) | d[1];
    if (d.size() < 2 + n) throw std::runtime_error("short");
    Bytes out(d.begin() + 2, d.begin() + 2 + static_cast<long>(n));
    d = d.subspan(2 + n);
    return out;
  }
};

// What TPM2_ActivateCredential did with a challenge, and how well-formed the challenge was.
struct CredentialActivation {
  std::optional<Bytes> released;  // nullopt where the TPM fails (TPM_RC_INTEGRITY) or it stopped early
  std::string ek_error;           // why the EK's TPM2B_PUBLIC did not parse; empty where it did
  int seed_rc = 0;                // EVP_PKEY_decrypt (RSA) or EVP_PKEY_derive (ECC); 1 is success
  int qe_rc = 1;                  // ECC: EVP_PKEY_fromdata for the ephemeral point Qe
  std::optional<std::size_t> qe_x_size;  // ECC: bytes in Qe's x coordinate
  std::size_t seed_size = 0;
  std::size_t trailing_bytes = 0;  // left over after each TPM2B, summed
};

// TPM2_ActivateCredential in software with the EK's private key (TPM 2.0 Part 1 §24): the seed
// from OAEP with label "IDENTITY" (RSA) or ECDH and KDFe (ECC), the outer HMAC over the encrypted
// identity and the AK's name, then the identity decrypted with AES-128-CFB. Stops early, with
// nothing released, where the EK does not parse or the RSA seed does not decrypt.
inline CredentialActivation activate_credential(EVP_PKEY* ek_private, const Bytes& ek_public, const Bytes& name,
                                                const protocol::CredentialChallenge& c) {
  namespace alg = attestation::alg;
  CredentialActivation out;
  auto ek = attestation::parse_tpm_public(ek_public);
  if (!ek) {
    out.ek_error = ek.error().message;
    return out;
  }
  Tpm2bReader secret_reader{c.encrypted_secret};
  Bytes secret = secret_reader.tpm2b();
  out.trailing_bytes += secret_reader.d.size();
  SecureBytes seed;
  if (EVP_PKEY_get_base_id(ek_private) == EVP_PKEY_RSA) {
    out.seed_rc = oaep_decrypt_seed(ek_private, "IDENTITY", secret, seed);
    if (out.seed_rc != 1) return out;
  } else {
    Tpm2bReader point{secret};
    Bytes x = point.tpm2b(), y = point.tpm2b();
    out.trailing_bytes += point.d.size();
    out.qe_x_size = x.size();
    Ecdh shared = ecdh_with_point(ek_private, x, y);
    out.qe_rc = shared.point_rc;
    out.seed_rc = shared.derive_rc;
    seed = *attestation::kdfe(alg::kSha256, shared.z, "IDENTITY", x, ek->ecc_x, 256);
  }
  out.seed_size = seed.size();
  Tpm2bReader blob{c.credential_blob};
  Bytes id_object = blob.tpm2b();
  out.trailing_bytes += blob.d.size();
  Tpm2bReader id{id_object};
  Bytes hmac = id.tpm2b();
  Bytes enc_identity(id.d.begin(), id.d.end());
  auto hmac_key = *attestation::kdfa(alg::kSha256, seed, "INTEGRITY", {}, {}, 256);
  Bytes input = enc_identity;
  input.insert(input.end(), name.begin(), name.end());
  unsigned char mac[32];
  unsigned mac_len = 0;
  HMAC(EVP_sha256(), hmac_key.data(), 32, input.data(), input.size(), mac, &mac_len);
  if (hmac != Bytes(mac, mac + mac_len)) return out;  // TPM_RC_INTEGRITY
  auto sym = *attestation::kdfa(alg::kSha256, seed, "STORAGE", name, {}, 128);
  Bytes plain(enc_identity.size());
  auto* cctx = EVP_CIPHER_CTX_new();
  uint8_t iv[16] = {};
  int l1 = 0, l2 = 0;
  EVP_DecryptInit_ex(cctx, EVP_aes_128_cfb128(), nullptr, sym.data(), iv);
  EVP_DecryptUpdate(cctx, plain.data(), &l1, enc_identity.data(), int(enc_identity.size()));
  EVP_DecryptFinal_ex(cctx, plain.data() + l1, &l2);
  EVP_CIPHER_CTX_free(cctx);
  Tpm2bReader digest{plain};
  out.released = digest.tpm2b();
  out.trailing_bytes += digest.d.size();
  return out;
}

// The SRK template's attributes (TCG Provisioning Guidance §7.5.1): fixedTPM|fixedParent|
// sensitiveDataOrigin|userWithAuth|noDA|restricted|decrypt.
inline constexpr uint32_t kSrkAttributes = 0x00030472;

// A TPM2_Certify result as the TPM makes it: TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY naming
// `certified`, signed by the AK.
struct CertifySpec {
  Bytes extra_data;
  Bytes certified_name;
  uint32_t magic = TPM2_GENERATED_VALUE;
  uint16_t type = TPM2_ST_ATTEST_CERTIFY;
  uint64_t clock = 5000;
};

inline Bytes certify_message(const CertifySpec& c) {
  // The header as a TPM writes it for a quote, then the certification's type and body.
  QuoteSpec header;
  header.nonce = c.extra_data;
  header.clock = c.clock;
  header.reset_count = 3;
  header.restart_count = 1;
  header.magic = c.magic;
  const Bytes quote = attest_message(header);
  TPMS_ATTEST attest{};
  std::size_t read = 0;
  if (Tss2_MU_TPMS_ATTEST_Unmarshal(quote.data(), quote.size(), &read, &attest) != TSS2_RC_SUCCESS)
    throw std::runtime_error("Tss2_MU_TPMS_ATTEST_Unmarshal");
  auto* a = &attest;
  a->type = c.type;
  if (c.type == TPM2_ST_ATTEST_CERTIFY) {
    a->attested.certify = {};
    a->attested.certify.name.size = uint16_t(c.certified_name.size());
    std::memcpy(a->attested.certify.name.name, c.certified_name.data(), c.certified_name.size());
    a->attested.certify.qualifiedName = a->attested.certify.name;
  }
  Bytes out(sizeof(TPMS_ATTEST));
  std::size_t off = 0;
  if (Tss2_MU_TPMS_ATTEST_Marshal(a, out.data(), out.size(), &off) != TSS2_RC_SUCCESS)
    throw std::runtime_error("Tss2_MU_TPMS_ATTEST_Marshal");
  out.resize(off);
  return out;
}


// TPM2_Certify of `certified_name` by `ak` as the TPM answers it: the message and its signature.
inline protocol::Certification certify_by(EVP_PKEY* ak, const CertifySpec& spec) {
  protocol::Certification c;
  c.message = certify_message(spec);
  c.signature = tpm_sign(ak, c.message);
  return c;
}

}  // namespace mcimd::test::verifier
