#pragma once
// Measured-boot logs as evidence: the TCG PC Client Platform Firmware Profile binary event log
// (crypto-agile, "Spec ID Event03") and the Linux IMA ASCII measurement list, parsed from hostile
// input (every read bounds-checked, counts and sizes capped) and replayed into PCR values.
#include <cstdint>
#include <map>
#include <optional>
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
  std::size_t max_ima_line = 8192;         // characters
};

struct EventDigest {
  uint16_t hash_alg = 0;  // TPM_ALG_ID
  Bytes digest;
};

struct Event {
  std::size_t sequence = 0;  // position in the log, 0 = the Spec ID header event
  uint32_t pcr = 0;
  uint32_t type = 0;
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
// "truncated", "too_large", "too_many_events", "bad_header", "unknown_algorithm",
// "bad_digest_count", "pcr_out_of_range", "bad_startup_locality" — followed by the event number
// and byte offset.
[[nodiscard]] Result<EventLog> parse_event_log(std::span<const uint8_t> log, const EventLogLimits& limits = {});

// PCR values by bank (TPM_ALG_ID) and index.
using PcrValues = std::map<uint16_t, std::map<unsigned, Bytes>>;

// Replays every event into the banks the header declares that we can hash (SHA-1/256/384/512):
// PCR := H(PCR ‖ digest) starting from zeros, except PCR 0 which starts at 0…0‖locality when a
// StartupLocality event is present (PFP §10.4.5.3). EV_NO_ACTION events are not extended. Only
// PCRs the log touches appear in the result (and PCR 0 when a locality was given). PCRs 17..22
// (DRTM, initial value all ones) are replayed from zeros too, so they never match a DRTM platform.
[[nodiscard]] Result<PcrValues> replay_event_log(const EventLog& log);

// One line of an IMA ASCII measurement list:
//   "<pcr> <template-hash> <template-name> <filedata-hash> <filename>"
// with filedata-hash "<alg>:<hex>" for ima-ng/ima-sig and bare SHA-1 hex for the "ima" template.
struct ImaEntry {
  unsigned pcr = 10;
  Bytes template_hash;        // SHA-1 over the template data (ascii_runtime_measurements)
  std::string template_name;  // "ima-ng", "ima-sig", "ima"
  std::string filedata_alg;   // "sha256", ... ("sha1" for the "ima" template)
  Bytes filedata_hash;
  std::string filename;       // for ima-sig: without the trailing signature field
  bool violation() const;     // all-zero template hash: a measurement violation
};

// Parses the list; lines must follow the format above (empty lines ignored). Errors name the
// line number.
[[nodiscard]] Result<std::vector<ImaEntry>> parse_ima_log(std::string_view text, const EventLogLimits& limits = {});

// The ima-ng template data (d-ng and n-ng fields, each a little-endian u32 length and its
// bytes) hashed with hash_alg. nullopt for other templates.
std::optional<Bytes> ima_template_hash(const ImaEntry& entry, uint16_t hash_alg);

// PCR 10 as the kernel extends it (security/integrity/ima/ima_queue.c):
//   sha1: extended with each template hash (all ones for a violation);
//   sha256 per-bank (kernels 5.8+ with the bank allocated): extended with SHA-256 of the template
//     data, available only when every entry is ima-ng (or a violation);
//   sha256 padded (older kernels): extended with the SHA-1 template hash zero-padded to 32 bytes.
struct ImaReplay {
  Bytes sha1;
  std::optional<Bytes> sha256_per_bank;
  Bytes sha256_padded;
  std::size_t entries = 0;
};
[[nodiscard]] Result<ImaReplay> replay_ima(const std::vector<ImaEntry>& entries);

}  // namespace mcimd::attestation
