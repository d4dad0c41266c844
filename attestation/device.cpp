#include "attestation/device.hpp"

#include <algorithm>

#include "common/file.hpp"
#include "common/log.hpp"
#include "protocol/quote.hpp"

namespace mcimd::attestation {

namespace {

Result<std::vector<tpm::PcrSelection>> choose_selection(tpm::Context& tpm, const EvidenceOptions& options) {
  if (options.pcrs.empty()) return fail(Code::InvalidArgument, "Evidence needs at least one PCR to quote");
  auto allocated = MCIMD_TRY(tpm.allocated_pcr_banks(options.pcrs));
  if (options.banks.empty()) {
    if (allocated.empty()) return fail(Code::Unsupported, "The TPM has none of the requested PCRs allocated in any bank");
    return allocated;
  }
  std::vector<tpm::PcrSelection> out;
  for (const auto& bank : options.banks) {
    auto it = std::find_if(allocated.begin(), allocated.end(), [&](const auto& s) { return s.bank == bank; });
    if (it == allocated.end())
      return fail(Code::Unsupported, "PCR bank '" + bank + "' is not allocated on this TPM (or has none of the PCRs)");
    if (std::any_of(out.begin(), out.end(), [&](const auto& s) { return s.bank == bank; }))
      return fail(Code::InvalidArgument, "PCR bank '" + bank + "' is listed twice");
    out.push_back(*it);
  }
  return out;
}

Result<std::vector<protocol::PcrBank>> read_pcrs(tpm::Context& tpm, const std::vector<tpm::PcrSelection>& selection) {
  std::vector<protocol::PcrBank> out;
  for (const auto& sel : selection) {
    protocol::PcrBank bank{sel.bank, {}};
    auto values = MCIMD_TRY(tpm.pcr_read(sel));
    for (auto& v : values) bank.values[v.index] = std::move(v.digest);
    out.push_back(std::move(bank));
  }
  return out;
}

// NotFound → nothing; other failures name the path.
template <class T>
Result<std::optional<T>> read_log(const std::filesystem::path& path, std::size_t max, std::string_view what) {
  if (path.empty()) return std::optional<T>{};
  auto data = read_file(path, max);
  if (!data) {
    if (data.error().code == Code::NotFound) {
      log::debug("No " + std::string(what) + " at " + path.string() + ", leaving it out of the evidence");
      return std::optional<T>{};
    }
    auto error = data.error();
    error.message = "Failed to read the " + std::string(what) + " " + path.string() + ": " + error.message;
    return tl::unexpected(std::move(error));
  }
  return std::optional<T>(T(data->begin(), data->end()));
}

}  // namespace

Result<protocol::Evidence> collect_evidence(tpm::Context& tpm, const tpm::KeyBlob& ak, std::span<const uint8_t> nonce,
                                            const EvidenceOptions& options) {
  if (nonce.size() > protocol::kMaxNonceSize)
    return fail(Code::InvalidArgument, "An evidence nonce is at most 64 bytes, not " + std::to_string(nonce.size()));
  if (options.max_attempts == 0) return fail(Code::InvalidArgument, "Evidence collection needs at least one attempt");
  auto selection = MCIMD_TRY(choose_selection(tpm, options));

  protocol::Evidence evidence;
  evidence.nonce.assign(nonce.begin(), nonce.end());
  bool consistent = false;
  for (unsigned attempt = 1; attempt <= options.max_attempts && !consistent; ++attempt) {
    auto before = MCIMD_TRY(read_pcrs(tpm, selection));
    if (options.before_quote) options.before_quote(attempt);
    auto quote = MCIMD_TRY(quote_payload(tpm, ak, protocol::QuoteDomain::OperatorEvidence, nonce, selection));
    auto after = MCIMD_TRY(read_pcrs(tpm, selection));
    if (before != after) {
      log::debug("PCRs changed while quoting (attempt " + std::to_string(attempt) + "), quoting again");
      continue;
    }
    auto info = MCIMD_TRY(protocol::parse_quote_message(quote.message));
    auto hash = MCIMD_TRY(protocol::signature_hash(quote.signature));
    auto digest = MCIMD_TRY(protocol::pcr_digest(info.selection, before, hash));
    if (digest != info.pcr_digest) {
      // Equal reads around a quote of other values: a PCR moved and came back, or was extended
      // between two reads of different banks. Only a matching digest makes the values the quoted ones.
      log::debug("Quoted PCR digest does not match the values read (attempt " + std::to_string(attempt) +
                 "), quoting again");
      continue;
    }
    evidence.quote_message = std::move(quote.message);
    evidence.quote_signature = std::move(quote.signature);
    evidence.pcrs = std::move(before);
    consistent = true;
  }
  if (!consistent)
    return fail(Code::Busy, "Failed to collect evidence: the PCRs kept changing while quoting (" +
                                std::to_string(options.max_attempts) + " attempts); try again later");

  evidence.ak_public = ak.public_area;
  if (options.include_ek_certificate) {
    auto cert = tpm.ek_certificate(options.ek_type);
    if (cert) evidence.ek_certificate = std::move(*cert);
    else if (cert.error().code != Code::NotFound) return tl::unexpected(cert.error());
  }
  evidence.event_log = MCIMD_TRY(read_log<Bytes>(options.event_log_path, protocol::kMaxEventLogSize, "event log"));
  evidence.ima_log = MCIMD_TRY(read_log<std::string>(options.ima_log_path, protocol::kMaxImaLogSize, "IMA log"));
  return evidence;
}

Result<tpm::Quote> quote_payload(tpm::Context& tpm, const tpm::KeyBlob& ak, protocol::QuoteDomain domain,
                                 std::span<const uint8_t> payload, std::span<const tpm::PcrSelection> selection) {
  const Bytes qualifying = protocol::qualifying_data(domain, payload);
  auto quote = MCIMD_TRY(tpm.quote(ak, qualifying, selection));
  auto info = MCIMD_TRY(protocol::parse_quote_message(quote.message));
  if (info.nonce != qualifying)
    return fail(Code::TpmFailure, "Failed to quote the " + std::string(protocol::short_name(domain)) +
                                      ": the TPM's quote does not carry the qualifying data");
  return quote;
}

Result<protocol::EnrolmentRequest> enrolment_request(tpm::Context& tpm, const tpm::KeyBlob& ak, tpm::EkType ek_type) {
  protocol::EnrolmentRequest request;
  request.ek_public = MCIMD_TRY(tpm.ek_public(ek_type));
  auto cert = tpm.ek_certificate(ek_type);
  if (cert) request.ek_certificate = std::move(*cert);
  else if (cert.error().code != Code::NotFound) return tl::unexpected(cert.error());
  // Loading proves the blob is a restricted signing key of this TPM before the operator sees it.
  { auto loaded = MCIMD_TRY(tpm.load_ak(ak)); }
  request.ak_public = ak.public_area;
  return request;
}

Result<SecureBytes> activate_credential(tpm::Context& tpm, const tpm::KeyBlob& ak, tpm::EkType ek_type,
                                        const protocol::CredentialChallenge& challenge) {
  return tpm.activate_credential(ak, ek_type, tpm::CredentialChallenge{challenge.credential_blob,
                                                                       challenge.encrypted_secret});
}

}  // namespace mcimd::attestation
