#pragma once
// The firmware's measured-boot log as evidence: the TCG PC Client Platform Firmware Profile binary
// event log (crypto-agile, "Spec ID Event03"), parsed from hostile input (every read
// bounds-checked, counts and sizes capped) and replayed into PCR values. What the events say is
// read in uefi_events.hpp; the IMA list is ima.hpp.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::attestation {

// TCG PC Client PFP §10.4.1 event types (the ones a policy usually names; others parse too).
namespace ev {
inline constexpr uint32_t kPostCode = 0x00000001;
inline constexpr uint32_t kNoAction = 0x00000003;
inline constexpr uint32_t kSeparator = 0x00000004;
inline constexpr uint32_t kAction = 0x00000005;
inline constexpr uint32_t kSCrtmVersion = 0x00000008;
inline constexpr uint32_t kIpl = 0x0000000D;
inline constexpr uint32_t kEfiVariableDriverConfig = 0x80000001;
inline constexpr uint32_t kEfiVariableBoot = 0x80000002;
inline constexpr uint32_t kEfiBootServicesApplication = 0x80000003;
inline constexpr uint32_t kEfiBootServicesDriver = 0x80000004;
inline constexpr uint32_t kEfiAction = 0x80000007;
inline constexpr uint32_t kEfiPlatformFirmwareBlob = 0x80000008;
inline constexpr uint32_t kEfiVariableBoot2 = 0x8000000C;
inline constexpr uint32_t kEfiHcrtmEvent = 0x80000010;
inline constexpr uint32_t kEfiVariableAuthority = 0x800000E0;
}  // namespace ev

// "EV_EFI_BOOT_SERVICES_APPLICATION" ↔ 0x80000003; unknown types print as "0x…".
std::string event_type_name(uint32_t type);
std::optional<uint32_t> event_type_from_name(std::string_view name);

// Caps applied while parsing; a log beyond them is refused rather than truncated.
struct EventLogLimits {
  std::size_t max_log_size = 16u << 20;    // bytes
  std::size_t max_events = 65536;
  std::size_t max_event_data = 1u << 20;   // bytes of one event's data
  std::size_t max_algorithms = 8;          // entries in the Spec ID header
  std::size_t max_ima_lines = 200000;
  std::size_t max_ima_line = 65536;        // characters: an ima-buf field (a measured key or
                                           // certificate) travels in hex on the line
};

struct EventDigest {
  uint16_t hash_alg = 0;  // TPM_ALG_ID
  Bytes digest;
};

// One TCG_PCR_EVENT2. Only the digests are extended into the PCR: the replay authenticates the
// PCR index and the digests, never the type or the data (uefi_events.hpp reads the data only
// where the digests are its hash).
struct Event {
  std::size_t sequence = 0;  // position in the log, 0 = the Spec ID header event
  uint32_t pcr = 0;
  uint32_t type = 0;         // as claimed
  std::vector<EventDigest> digests;
  Bytes data;
  // The digest in one bank, nullptr when the event carries none for it.
  const Bytes* digest(uint16_t hash_alg) const;
};

struct EventLog {
  std::vector<std::pair<uint16_t, uint16_t>> algorithms;  // (TPM_ALG_ID, digest size) from Spec ID
  uint8_t spec_errata = 0;
  std::optional<uint8_t> startup_locality;  // from a "StartupLocality" EV_NO_ACTION event
  std::vector<Event> events;                // all events after the header, EV_NO_ACTION included
};

// Parses a crypto-agile binary event log. The first event must be a TCG_PCClientPCREvent
// (SHA-1 format) of type EV_NO_ACTION in PCR 0 carrying TCG_EfiSpecIDEvent "Spec ID Event03";
// every later event a TCG_PCR_EVENT2 whose digests use only algorithms the header declared, with
// the sizes it declared. Errors are InvalidArgument whose message starts with a stable reason:
// "legacy_format" (a SHA-1-only log of TCG_PCClientPCREvent records, PFP §10.2.1, or a TCG 1.2
// "Spec ID Event00" header: only crypto-agile logs are accepted), "truncated", "too_large",
// "too_many_events", "bad_header", "unknown_algorithm", "bad_digest_count", "pcr_out_of_range",
// "bad_startup_locality" — followed by the event number and byte offset.
[[nodiscard]] Result<EventLog> parse_event_log(std::span<const uint8_t> log, const EventLogLimits& limits = {});

// PCR := H(PCR ‖ digest) (TPM 2.0 Part 1 §17.2, TPM2_PCR_Extend) with a hash hash_size() knows.
void extend_pcr(uint16_t hash_alg, Bytes& pcr, std::span<const uint8_t> digest);

// PCR values by bank (TPM_ALG_ID) and index.
using PcrValues = std::map<uint16_t, std::map<unsigned, Bytes>>;
// "sha256:7".
std::string pcr_label(uint16_t hash_alg, unsigned pcr);

// What a firmware log says about the PCRs.
struct EventLogReplay {
  // Every covered PCR of every bank the log can be replayed in.
  PcrValues pcrs;
  // The PCRs the log speaks for: 0–7, the firmware's own (PC Client PFP §3.3.4: each ends with an
  // EV_SEPARATOR, so a log without events for one of them is cut short), and every PCR an event
  // extends. A covered PCR no event extends replays to its initial value.
  std::set<unsigned> covered;
  // Banks the header declares that cannot be replayed, and why (an event without a digest for it,
  // a hash this verifier does not know).
  std::map<uint16_t, std::string> unreplayable;
};

// Replays every event into each bank the header declares: PCR := H(PCR ‖ digest) from its initial
// value — zeros, except PCR 0 which starts at 0…0‖locality when a StartupLocality event is
// present (PFP §10.4.5.3) and at 0…0‖04 after an H-CRTM sequence (EV_EFI_HCRTM_EVENT, TPM 2.0
// Part 1 §34.3; it must come before any other PCR 0 measurement). EV_NO_ACTION events are not
// extended (PFP §10.4.2). PCRs 17..22 (DRTM, initial value all ones) are replayed from zeros, so
// they never match a DRTM platform. InvalidArgument "bad_hcrtm" for a misplaced H-CRTM event.
[[nodiscard]] Result<EventLogReplay> replay_event_log(const EventLog& log);

}  // namespace mcimd::attestation
