#include "attestation/device.hpp"
#include "attestation/jws.hpp"
#include "attestation/policy.hpp"
#include "attestation/verifier.hpp"
#include "common/log.hpp"
#include "protocol/quote.hpp"

namespace mcimd::attestation {

namespace {

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

protocol::PlatformReport make_report(const protocol::Evidence& evidence, const VerificationResult& verdict,
                                     const ReferencePolicy& policy, const PlatformValidationOptions& options) {
  protocol::PlatformReport report;
  report.nonce = options.nonce;
  report.policy_digest = *hash(alg::kSha256, bytes_of(options.signed_policy));  // SHA-256: cannot fail
  report.trusted = verdict.ok;
  for (const auto& c : verdict.checks) report.checks.push_back({c.name, c.passed, c.reason});
  report.pcrs = evidence.pcrs;
  if (policy.needs_event_log()) report.event_log = evidence.event_log;
  if (policy.needs_ima_log()) report.ima_log = evidence.ima_log;
  return report;
}

}  // namespace

Result<PlatformValidation> validate_platform(tpm::Context& tpm, const tpm::KeyBlob& ak, const CaBundle& trust,
                                             const PlatformValidationOptions& options) {
  if (options.max_attempts == 0) return fail(Code::InvalidArgument, "Platform validation needs at least one attempt");
  auto content = jws_verify(options.signed_policy, trust);
  if (!content) return fail(Code::NotAuthorized, "The reference policy's signature: " + content.error().message);
  auto policy = MCIMD_TRY(parse_policy(std::string_view(reinterpret_cast<const char*>(content->payload.data()),
                                                        content->payload.size())));
  for (unsigned attempt = 1; attempt <= options.max_attempts; ++attempt) {
    auto evidence = MCIMD_TRY(collect_evidence(tpm, ak, options.nonce, options.evidence));
    VerifierOptions verifier;
    verifier.nonce = options.nonce;
    verifier.policy = policy;
    const auto verdict = verify(evidence, verifier);

    PlatformValidation out;
    out.report = make_report(evidence, verdict, policy, options);
    out.report_json = protocol::to_json(out.report);
    // The same selection as the evidence's quote, now over the report.
    auto evidence_quote = MCIMD_TRY(protocol::parse_quote_message(evidence.quote_message));
    std::vector<tpm::PcrSelection> selection;
    for (auto& bank : evidence_quote.selection) selection.push_back(tpm::PcrSelection{bank.bank, bank.pcrs});
    out.quote = MCIMD_TRY(quote_payload(tpm, ak, protocol::QuoteDomain::PlatformReport, bytes_of(out.report_json),
                                        selection));
    auto info = MCIMD_TRY(protocol::parse_quote_message(out.quote.message));
    auto hash_name = MCIMD_TRY(protocol::signature_hash(out.quote.signature));
    auto expected = MCIMD_TRY(protocol::pcr_digest(info.selection, out.report.pcrs, hash_name));
    if (expected == info.pcr_digest) return out;
    log::debug("PCRs changed between the evaluation and the report's quote (attempt " + std::to_string(attempt) +
               "), evaluating again");
  }
  return fail(Code::Busy, "The PCRs kept changing while the platform was being validated; try again");
}

}  // namespace mcimd::attestation
