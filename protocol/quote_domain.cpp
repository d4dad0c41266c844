#include "protocol/quote_domain.hpp"

#include <openssl/sha.h>

namespace mcimd::protocol {

std::string_view label(QuoteDomain domain) {
  switch (domain) {
    case QuoteDomain::OperatorEvidence: return "mcimd/quote/operator-evidence/v1";
    case QuoteDomain::PlatformReport: return "mcimd/quote/platform-report/v1";
    case QuoteDomain::InstallReceipt: return "mcimd/quote/install-receipt/v1";
    case QuoteDomain::DeletionReceipt: return "mcimd/quote/deletion-receipt/v1";
    case QuoteDomain::SrkCertification: return "mcimd/certify/srk/v1";
  }
  return {};
}

std::string_view short_name(QuoteDomain domain) {
  switch (domain) {
    case QuoteDomain::OperatorEvidence: return "evidence";
    case QuoteDomain::PlatformReport: return "report";
    case QuoteDomain::InstallReceipt: return "install-receipt";
    case QuoteDomain::DeletionReceipt: return "deletion-receipt";
    case QuoteDomain::SrkCertification: return "srk-certification";
  }
  return {};
}

std::optional<QuoteDomain> quote_domain_from_name(std::string_view name) {
  for (QuoteDomain d : kQuoteDomains)
    if (short_name(d) == name) return d;
  return std::nullopt;
}

Bytes qualifying_data(QuoteDomain domain, std::span<const uint8_t> payload) {
  const std::string_view l = label(domain);
  Bytes input;
  input.reserve(l.size() + 1 + payload.size());
  input.insert(input.end(), l.begin(), l.end());
  input.push_back(0);  // the label's terminating NUL: no label's input is a prefix of another's
  input.insert(input.end(), payload.begin(), payload.end());
  Bytes out(SHA256_DIGEST_LENGTH);
  SHA256(input.data(), input.size(), out.data());
  return out;
}

}  // namespace mcimd::protocol
