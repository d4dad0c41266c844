// Hostile evidence documents and platform reports through the whole verifier: JSON decoding, TPM
// structure unmarshalling, signature, PCR and log checks, and a reference policy with variable and
// application rules over whatever the logs say. Any verdict is fine; a crash is not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "attestation/policy.hpp"
#include "attestation/verifier.hpp"
#include "protocol/evidence.hpp"

namespace {

const mcimd::attestation::ReferencePolicy& policy() {
  static const auto p = *mcimd::attestation::parse_policy(
      "required_pcrs:\n  sha256: [0, 7]\n"
      "variables:\n"
      "  - guid: 8be4df61-93ca-11d2-aa0d-00e098032b8c\n    name: SecureBoot\n    values: [\"01\"]\n"
      "  - guid: 8be4df61-93ca-11d2-aa0d-00e098032b8c\n    name: BootOrder\n    pcr: 1\n"
      "    data_sha256: [\"" + std::string(64, '0') + "\"]\n"
      "applications:\n  - path: '\\EFI\\BOOT\\BOOTX64.EFI'\n    sha256: [\"" + std::string(64, '1') + "\"]\n"
      "require_ima_log: true\n");
  return p;
}

// A platform report as verify-report reads it: its values and logs under a quote of its bytes
// (here, any quote: the fuzzer cannot sign), evaluated against the policy.
void verify_report(std::string_view text) {
  using namespace mcimd;
  auto report = protocol::platform_report_from_json(text);
  if (!report) return;
  protocol::Evidence as_evidence;
  as_evidence.pcrs = report->pcrs;
  as_evidence.event_log = report->event_log;
  as_evidence.ima_log = report->ima_log;
  attestation::VerifierOptions options;
  options.nonce.assign(text.begin(), text.end());
  options.domain = protocol::QuoteDomain::PlatformReport;
  options.policy = policy();
  (void)attestation::verify(as_evidence, options).failures();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcimd;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  verify_report(text);
  auto evidence = protocol::evidence_from_json(text);
  if (!evidence) return 0;
  attestation::VerifierOptions options;
  options.nonce = evidence->nonce;
  options.last_clock = attestation::ClockInfo{1, 1, 0, true};
  options.limits.max_events = 4096;
  auto result = attestation::verify(*evidence, options);
  (void)result.failures();
  options.policy = policy();
  result = attestation::verify(*evidence, options);
  (void)result.failures();
  return 0;
}
