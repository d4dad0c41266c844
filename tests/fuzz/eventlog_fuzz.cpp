// Hostile firmware event logs and IMA lists: parsing, replay, reading what the events say
// (UEFI variables, image load events and their device paths) and the IMA template hashes, prefix
// replay and boot_aggregate must never read out of bounds, crash or exhaust memory; errors are
// fine.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "attestation/eventlog.hpp"
#include "attestation/ima.hpp"
#include "attestation/log_checks.hpp"
#include "attestation/uefi_events.hpp"
#include "attestation/verifier_tpm.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcimd;
  using namespace mcimd::attestation;
  EventLogLimits limits;
  limits.max_events = 4096;
  limits.max_event_data = 64 * 1024;
  if (auto log = parse_event_log({data, size}, limits)) {
    if (auto replay = replay_event_log(*log)) {
      std::string detail;
      (void)check_event_log_replay(*replay, replay->pcrs, detail);
    }
    for (const auto& e : log->events) (void)event_type_name(e.type);
    (void)read_event_content(*log);
  }
  // The same bytes as one event's data.
  (void)parse_uefi_variable({data, size});
  (void)parse_image_load({data, size});
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)guid_from_string(text);
  if (auto entries = parse_ima_log(text, limits)) {
    for (const auto& e : *entries) (void)ima_template_hash(e, alg::kSha1);
    PcrValues quoted;
    for (unsigned pcr = 0; pcr <= kImaPcr; ++pcr) {
      quoted[alg::kSha1][pcr] = Bytes(20, uint8_t(pcr));
      quoted[alg::kSha256][pcr] = Bytes(32, uint8_t(pcr));
    }
    (void)check_ima_replay(*entries, quoted);
    (void)check_ima_boot_aggregate(*entries, quoted);
  }
  return 0;
}
