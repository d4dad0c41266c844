// Hostile firmware event logs and IMA lists: parsing and replay must never read out of bounds,
// crash or exhaust memory; errors are fine.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "attestation/eventlog.hpp"
#include "attestation/verifier_tpm.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcimd::attestation;
  EventLogLimits limits;
  limits.max_events = 4096;
  limits.max_event_data = 64 * 1024;
  if (auto log = parse_event_log({data, size}, limits)) {
    (void)replay_event_log(*log);
    for (const auto& e : log->events) (void)event_type_name(e.type);
  }
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto entries = parse_ima_log(text, limits)) {
    for (const auto& e : *entries) (void)ima_template_hash(e, alg::kSha1);
    (void)replay_ima(*entries);
  }
  return 0;
}
