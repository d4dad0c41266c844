#pragma once
// Quote domains: what a TPM quote was made for. Every quote mcimd makes carries, as its
// qualifyingData (TPM 2.0 Part 3 §18.4, the TPMS_ATTEST extraData), the SHA-256 of a label naming
// its purpose, the label's terminating NUL, and the purpose's payload:
//
//   qualifying_data(domain, payload) = SHA-256(label(domain) ‖ 0x00 ‖ payload)
//
// The NUL ends the label, so no label's input is a prefix of another's, and a quote made for one
// purpose (evidence for an operator's nonce, a platform report, a receipt) can never be presented
// as another. docs/protocol.md lists the labels; `mcim-operator qualifying-data` prints the value
// for tpm2_checkquote -q.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "common/bytes.hpp"

namespace mcimd::protocol {

enum class QuoteDomain {
  OperatorEvidence,  // payload: the operator's nonce (remote validation)
  PlatformReport,    // payload: the platform report's JSON bytes (semi-autonomous validation)
  InstallReceipt,    // payload: the install receipt document
  DeletionReceipt,   // payload: the deletion receipt document
  SrkCertification,  // TPM2_Certify of the SRK; payload: operator nonce ‖ device nonce (provisioning)
};

inline constexpr std::array kQuoteDomains = {QuoteDomain::OperatorEvidence, QuoteDomain::PlatformReport,
                                             QuoteDomain::InstallReceipt, QuoteDomain::DeletionReceipt,
                                             QuoteDomain::SrkCertification};

// The label without its NUL, e.g. "mcimd/quote/operator-evidence/v1".
std::string_view label(QuoteDomain domain);
// Short names for command lines: "evidence", "report", "install-receipt", "deletion-receipt".
std::string_view short_name(QuoteDomain domain);
std::optional<QuoteDomain> quote_domain_from_name(std::string_view short_name);

// SHA-256 output: 32 bytes, within TPM2B_DATA's 64 (Part 2 §10.4.3).
inline constexpr std::size_t kQualifyingDataSize = 32;

// SHA-256(label(domain) ‖ 0x00 ‖ payload).
Bytes qualifying_data(QuoteDomain domain, std::span<const uint8_t> payload);

}  // namespace mcimd::protocol
