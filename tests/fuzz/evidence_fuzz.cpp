// Hostile evidence documents through the whole verifier: JSON decoding, TPM structure
// unmarshalling, signature, PCR and log checks. Any verdict is fine; a crash is not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "attestation/verifier.hpp"
#include "protocol/evidence.hpp"

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
  return 0;
}
