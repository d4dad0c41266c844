#pragma once
// Valid provisioning messages built in software: TPM structures marshaled with tss2-mu, keys
// from OpenSSL, the evidence signed like a TPM signs it. Header-only so the unit tests and the
// fuzz seed writer share one idea of a well-formed message.
#include <tss2/tss2_mu.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "protocol/provisioning.hpp"
#include "protocol/quote.hpp"
#include "protocol/quote_domain.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

namespace mcimd::test::provisioning {

using namespace std::chrono_literals;

// TPMA_OBJECT (TPM 2.0 Part 2 §8.3) of the SRK (TCG provisioning guidance: fixedTPM|fixedParent|
// sensitiveDataOrigin|userWithAuth|noDA|restricted|decrypt), of an imported object (fixedTPM and
// fixedParent clear, as duplication needs; adminWithPolicy|noDA|decrypt|sign) and of the policy
// authority as TPM2_LoadExternal takes it (sign|userWithAuth).
inline constexpr uint32_t kSrkAttributes = 0x00030472;
inline constexpr uint32_t kImportedKeyAttributes = 0x00060480;
inline constexpr uint32_t kAuthorityAttributes = 0x00040040;

template <class T, auto Marshal>
Bytes marshal(const T& value) {
  Bytes out(sizeof(T) + 16);
  std::size_t off = 0;
  if (Marshal(&value, out.data(), out.size(), &off) != TSS2_RC_SUCCESS) throw std::runtime_error("tss2-mu marshal");
  out.resize(off);
  return out;
}

// A TPM2B of `size` bytes of `fill` (TPM2B_PRIVATE, TPM2B_ENCRYPTED_SECRET: the TPM2B header
// is the same for every sized buffer).
template <class T, auto Marshal>
Bytes tpm2b(std::size_t size, uint8_t fill) {
  T value{};
  value.size = static_cast<uint16_t>(size);
  std::memset(&value.size + 1, fill, size);
  return marshal<T, Marshal>(value);
}

inline Bytes private_blob(std::size_t size = 80) {
  return tpm2b<TPM2B_PRIVATE, Tss2_MU_TPM2B_PRIVATE_Marshal>(size, 0x5a);
}
inline Bytes encrypted_seed(std::size_t size = 68) {
  return tpm2b<TPM2B_ENCRYPTED_SECRET, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal>(size, 0xc3);
}

// TPMS_ATTEST of TPM2_Certify (Part 2 §10.12.3): the certified object's name and qualified name.
inline Bytes certify_message(const Bytes& object_name, const Bytes& extra_data) {
  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_CERTIFY;
  a.qualifiedSigner.size = 34;
  a.extraData.size = static_cast<uint16_t>(extra_data.size());
  std::memcpy(a.extraData.buffer, extra_data.data(), extra_data.size());
  a.clockInfo.clock = 5000;
  a.clockInfo.resetCount = 1;
  a.clockInfo.safe = 1;
  a.firmwareVersion = 0x2023;
  a.attested.certify.name.size = static_cast<uint16_t>(object_name.size());
  std::memcpy(a.attested.certify.name.name, object_name.data(), object_name.size());
  a.attested.certify.qualifiedName.size = static_cast<uint16_t>(object_name.size());
  std::memcpy(a.attested.certify.qualifiedName.name, object_name.data(), object_name.size());
  return marshal<TPMS_ATTEST, Tss2_MU_TPMS_ATTEST_Marshal>(a);
}

inline Bytes concat(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// Keys of one software "device": AK, SRK and the policy authority.
struct Device {
  attestation::EvpPkey ak = verifier::ec_key();
  attestation::EvpPkey srk = verifier::ec_key();
  attestation::EvpPkey authority = verifier::ec_key();
  Bytes ak_public = verifier::tpm_public(ak.get(), verifier::kAkAttributes);
  Bytes srk_public = verifier::tpm_public(srk.get(), kSrkAttributes);
  Bytes authority_public = verifier::tpm_public(authority.get(), kAuthorityAttributes);
  Bytes ak_name = *protocol::object_name(ak_public);
  Bytes srk_name = *protocol::object_name(srk_public);
  Bytes authority_name = *protocol::object_name(authority_public);
  std::string id = to_hex(ak_name);
};

inline const protocol::Timestamp kIssued{std::chrono::sys_days{std::chrono::year{2027} / 1 / 31} + 12h};

inline protocol::ProvisioningSessionRequest session_request(const Device& d) { return {d.id, "subscriber-42.a"}; }

inline protocol::ProvisioningSession session() {
  return {"s-9f2c1a", Bytes(protocol::kProvisioningNonceSize, 0x11), kIssued + 10min};
}

inline protocol::PackageRequest package_request(const Device& d) {
  protocol::PackageRequest m;
  m.session = "s-9f2c1a";
  m.device = d.id;
  m.operator_nonce = Bytes(protocol::kProvisioningNonceSize, 0x11);
  m.device_nonce = Bytes(protocol::kProvisioningNonceSize, 0x22);
  m.counter = 3;
  m.srk_public = d.srk_public;
  m.srk_certification.message = certify_message(
      d.srk_name, protocol::qualifying_data(protocol::QuoteDomain::SrkCertification,
                                            concat(m.operator_nonce, m.device_nonce)));
  m.srk_certification.signature = verifier::tpm_sign(d.ak.get(), m.srk_certification.message);
  m.authority = d.authority_public;
  m.algorithms = {"milenage"};
  m.deletion = {0x01300001, 7};
  m.evidence = verifier::signed_evidence(d.ak.get(), m.operator_nonce, attestation::alg::kSha256,
                                        {{0, Bytes(32, 0x01)}, {7, Bytes(32, 0x07)}});
  return m;
}

inline protocol::ImportBlob import_blob(attestation::EvpPkey const& key, uint8_t salt) {
  return {verifier::tpm_public(key.get(), kImportedKeyAttributes), private_blob(80 + salt), encrypted_seed(68)};
}

inline protocol::PackageHeader package_header(const Device& d) {
  protocol::PackageHeader h;
  h.package_id = "pkg-2027.01.31-0001";
  h.device = d.id;
  h.device_nonce = Bytes(protocol::kProvisioningNonceSize, 0x22);
  h.counter = 4;
  h.issued = kIssued;
  h.expires = kIssued + std::chrono::days{7};
  h.operator_id = "Example Operator 001-01";
  h.iccid = "8901001234567890123";
  h.imsi = "001010123456789";
  h.profile_class = "operational";
  h.algorithm = "milenage";
  h.amf = {0x80, 0x00};
  h.sqn = {5, uint64_t{1} << 28, 0, false, 32};
  h.rules = {true, false, kIssued + std::chrono::days{365}, true};
  h.srk_name = d.srk_name;
  h.authority = d.authority_public;
  h.deletion = {0x01300001, 7};
  static const attestation::EvpPkey k = verifier::ec_key(), opc = verifier::ec_key();
  h.k = import_blob(k, 0);
  h.opc = import_blob(opc, 1);
  return h;
}

inline protocol::ReceiptBody receipt_body(const Device& d) {
  return {"pkg-2027.01.31-0001", d.id, 4, Bytes(32, 0x33), "8901001234567890123", 2, "operational"};
}

// A receipt as mcimd makes it: `body` quoted by the device's AK in `domain` (sha256:7, as the
// daemon quotes receipts). Receipt is InstallReceipt or DeletionReceipt.
template <class Receipt>
Receipt quoted_receipt(const Device& d, std::string body, protocol::QuoteDomain domain) {
  Receipt m;
  m.body = std::move(body);
  verifier::QuoteSpec q;
  q.nonce = protocol::qualifying_data(domain, {reinterpret_cast<const uint8_t*>(m.body.data()), m.body.size()});
  q.selection = {{attestation::alg::kSha256, {7}}};
  q.pcr_digest = verifier::sha(attestation::alg::kSha256, Bytes(32, 0x07));
  m.quote_message = verifier::attest_message(q);
  m.quote_signature = verifier::tpm_sign(d.ak.get(), m.quote_message);
  return m;
}

inline protocol::InstallReceipt install_receipt(const Device& d) {
  return quoted_receipt<protocol::InstallReceipt>(d, protocol::to_json(receipt_body(d)),
                                                  protocol::QuoteDomain::InstallReceipt);
}

inline protocol::ProtocolError protocol_error() { return {"Replayed", "The session's nonce was already used"}; }

}  // namespace mcimd::test::provisioning
