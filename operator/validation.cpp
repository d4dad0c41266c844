#include "operator/validation.hpp"

#include <algorithm>

#include "attestation/jws.hpp"
#include "attestation/verifier_tpm.hpp"
#include "protocol/quote.hpp"

namespace mcimd::op {

namespace {

using attestation::Check;

constexpr std::string_view kAkEnrolled = "ak.enrolled";

// Places a check right after the AK checks, where attestation::verify puts ak.enrolled.
void insert_after_ak_checks(std::vector<Check>& checks, Check check) {
  auto it = std::find_if(checks.begin(), checks.end(), [](const Check& c) { return !c.name.starts_with("ak."); });
  checks.insert(it, std::move(check));
}

bool all_passed(const std::vector<Check>& checks) {
  return !checks.empty() && std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.passed; });
}

Result<std::optional<DeviceRecord>> find_enrolled(const Registry& registry, std::span<const uint8_t> ak_name) {
  auto rec = MCIMD_TRY(registry.find(ak_name));
  if (rec && !rec->enrolled) return std::optional<DeviceRecord>();
  return rec;
}

// ek.chain for a device enrolled without an EK certificate: say so, whatever the verifier found.
void note_uncertified_ek(std::vector<Check>& checks, const DeviceRecord& rec) {
  if (!rec.uncertified_ek) return;
  for (auto& c : checks) {
    if (c.name != "ek.chain") continue;
    if (c.not_checked) c.reason = std::string(kUncertifiedEk);
    else c.reason += " (the EK was enrolled as uncertified, --allow-uncertified-ek)";
  }
}

Status remember_clock(const Registry& registry, DeviceRecord& rec,
                      const std::optional<attestation::ClockInfo>& clock) {
  if (!clock) return {};
  rec.last_clock = *clock;
  return registry.store(rec);
}

// The enrolled device whose AK verifies this quote signature, if any.
Result<std::optional<DeviceRecord>> find_signer(const Registry& registry, std::span<const uint8_t> message,
                                                std::span<const uint8_t> signature) {
  auto records = MCIMD_TRY(registry.list());
  for (auto& rec : records) {
    if (!rec.enrolled) continue;
    auto ak = attestation::parse_tpm_public(rec.ak_public);
    if (ak && attestation::verify_signature(*ak, message, signature)) return std::optional<DeviceRecord>(std::move(rec));
  }
  return std::optional<DeviceRecord>();
}

constexpr std::string_view kEvidenceForDigest =
    "it is evidence (the evidence domain) for a nonce equal to the report's SHA-256, as GetEvidence makes for "
    "anyone who may call it";

// Whether the quote is operator evidence whose nonce is SHA-256 of the report: what binding a
// report by its digest alone allowed anyone with GetEvidence to forge.
bool quoted_as_evidence_for_digest(const ReportInputs& in) {
  auto quote = attestation::parse_attest(in.quote_message);
  auto digest = attestation::hash(attestation::alg::kSha256, in.report_bytes);
  return quote && digest &&
         quote->extra_data == protocol::qualifying_data(protocol::QuoteDomain::OperatorEvidence, *digest);
}

}  // namespace

Result<DeviceVerification> verify_device(const Registry& registry, const protocol::Evidence& evidence,
                                         const DeviceVerifyOptions& options) {
  DeviceVerification out;
  attestation::VerifierOptions verifier;
  verifier.nonce = options.nonce;
  verifier.policy = options.policy;
  verifier.ek_cas = options.ek_cas;

  std::optional<DeviceRecord> rec;
  std::string not_enrolled = "the attestation key does not parse, so no device is enrolled with it";
  if (auto name = protocol::object_name(evidence.ak_public); name) {
    out.device = device_id(*name);
    rec = MCIMD_TRY(find_enrolled(registry, *name));
    not_enrolled = "no device is enrolled with this attestation key (device " + out.device + ")";
  }
  if (rec) {
    verifier.enrolled_ak_public = rec->ak_public;
    verifier.ek_public = rec->ek_public;
    verifier.last_clock = rec->last_clock;
  }

  out.result = attestation::verify(evidence, verifier);
  if (rec) note_uncertified_ek(out.result.checks, *rec);
  if (!rec) {
    insert_after_ak_checks(out.result.checks, Check{std::string(kAkEnrolled), false, not_enrolled});
    out.result.ok = false;
    return out;
  }
  if (out.result.ok) MCIMD_CHECK(remember_clock(registry, *rec, out.result.clock));
  return out;
}

Result<ReportVerification> verify_report(const Registry& registry, const ReportInputs& in) {
  ReportVerification out;
  auto& checks = out.checks;

  std::optional<DeviceRecord> rec;
  if (in.device) {
    auto name = from_hex(*in.device, "device id");
    if (!name) return fail(Code::InvalidArgument, name.error().message);
    rec = MCIMD_TRY(find_enrolled(registry, *name));
    out.device = *in.device;
    if (!rec) checks.push_back({std::string(kAkEnrolled), false, "device " + *in.device + " is not enrolled"});
  } else {
    rec = MCIMD_TRY(find_signer(registry, in.quote_message, in.quote_signature));
    if (!rec) checks.push_back({std::string(kAkEnrolled), false, "no enrolled device's attestation key signed the quote"});
  }

  std::optional<attestation::ClockInfo> clock;
  if (rec) {
    out.device = device_id(rec->ak_name);
    // The quote checks are the remote validation ones over a document made of the report's
    // PCR values, in the platform-report domain with the report's bytes as the payload.
    protocol::Evidence evidence;
    evidence.nonce = in.report_bytes;
    evidence.quote_message = in.quote_message;
    evidence.quote_signature = in.quote_signature;
    evidence.pcrs = in.report.pcrs;
    evidence.ak_public = rec->ak_public;
    evidence.event_log = in.report.event_log;
    evidence.ima_log = in.report.ima_log;
    attestation::VerifierOptions verifier;
    verifier.nonce = in.report_bytes;
    verifier.domain = protocol::QuoteDomain::PlatformReport;
    // The operator's own evaluation of its policy, never the device's verdict.
    verifier.policy = MCIMD_TRY(policy_from_jws(in.policy_jws));
    verifier.enrolled_ak_public = rec->ak_public;
    verifier.last_clock = rec->last_clock;
    auto result = attestation::verify(evidence, verifier);
    for (auto& c : result.checks) {
      if (c.name == "quote.nonce") {
        c.name = "quote.report_digest";
        c.reason = c.passed ? "the quote's qualifying data is the report's in the platform-report domain"
                            : std::string("the quote is not for this report in the platform-report domain: ") +
                                  (quoted_as_evidence_for_digest(in) ? std::string(kEvidenceForDigest) : c.reason);
      }
      if (c.name == "ek.chain" && c.not_checked)
        c.reason = "not checked: a platform report carries no EK certificate; the AK was bound to the enrolled EK "
                   "at enrolment";
      checks.push_back(std::move(c));
    }
    note_uncertified_ek(checks, *rec);
    clock = result.clock;
  }

  if (in.report.nonce == in.nonce)
    checks.push_back({"report.nonce", true, "the report answers the operator's nonce"});
  else
    checks.push_back({"report.nonce", false, "the report answers another nonce: replayed or misdirected report"});

  const Bytes digest = MCIMD_TRY(policy_digest(in.policy_jws));
  if (in.report.policy_digest == digest)
    checks.push_back({"report.policy_digest", true, "the device evaluated this signed policy"});
  else
    checks.push_back({"report.policy_digest", false, "the device evaluated another policy (SHA-256 " +
                                                         to_hex(in.report.policy_digest) + ", expected " +
                                                         to_hex(digest) + ")"});

  out.ok = all_passed(checks);
  if (out.ok && rec) MCIMD_CHECK(remember_clock(registry, *rec, clock));
  return out;
}

// A JWS compact serialization holds no whitespace (RFC 7515 §7.1), so whitespace around it is
// the file's, not part of what was signed; mcimctl strips it the same way before sending.
std::string_view compact_jws(std::string_view policy_jws) {
  constexpr std::string_view kSpace = " \t\r\n";
  const auto first = policy_jws.find_first_not_of(kSpace);
  return first == std::string_view::npos ? std::string_view()
                                         : policy_jws.substr(first, policy_jws.find_last_not_of(kSpace) - first + 1);
}

Result<attestation::ReferencePolicy> policy_from_jws(std::string_view policy_jws) {
  auto content = attestation::jws_verify_as_signed(compact_jws(policy_jws));
  if (!content) return fail(Code::InvalidArgument, "the signed policy: " + content.error().message);
  auto policy = attestation::parse_policy(
      std::string_view(reinterpret_cast<const char*>(content->payload.data()), content->payload.size()));
  if (!policy) return fail(Code::InvalidArgument, "the signed policy: " + policy.error().message);
  return policy;
}

Result<Bytes> policy_digest(std::string_view policy_jws) {
  const std::string_view compact = compact_jws(policy_jws);
  return attestation::hash(attestation::alg::kSha256,
                           std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(compact.data()), compact.size()));
}

}  // namespace mcimd::op
