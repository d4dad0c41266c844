// Hostile evidence documents through the whole verifier: JSON decoding, TPM structure
// unmarshalling, signature, PCR and log checks, and a reference policy with variable and
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcimd;
  auto evidence = protocol::evidence_from_json(std::string_view(reinterpret_cast<const char*>(data), size));
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
