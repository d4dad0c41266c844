#pragma once
// Reference policy: what a verifier accepts for one class of device — PCR values per bank, the
// PCRs a quote must cover, the UEFI variables the firmware measured and the EFI applications it
// ran. Written in YAML by the operator; in semi-autonomous mode it travels signed (jws.hpp), the
// device evaluates it and the operator evaluates it again on what the device reports.
//
// Rules name what the digests in the log cover (uefi_events.hpp), never an event's type: the type
// is not measured, so a rule keyed on it is one relabelled event away from passing.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/uefi_events.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::attestation {

// A UEFI variable the firmware measured: every event measuring it (matched by GUID and name, and
// PCR when given) must carry one of the allowed values, and at least one must be in the log.
struct VariableRule {
  Guid guid{};
  std::string name;
  std::optional<unsigned> pcr;
  std::vector<Bytes> values;         // allowed VariableData, exactly
  std::vector<Bytes> data_sha256;    // allowed SHA-256 of VariableData (for large ones: db, dbx, KEK)
};

// One allowed EFI application: its Authenticode digest in each listed bank (as the log carries
// it) and, when given, the file path its device path names (not covered by the digest, so it can
// only narrow a match, never widen one).
struct ApplicationRule {
  std::optional<std::string> path;
  std::map<uint16_t, std::vector<Bytes>> digests;  // bank → allowed digests
};

// YAML form (every key optional, any other key refused, a key given twice refused):
//
//   required_pcrs:            # the quote must cover at least these PCRs of these banks
//     sha256: [0, 2, 4, 7]
//   pcrs:                     # quoted value must be one of these (hex)
//     sha256:
//       7: ["a1b2…", "c3d4…"]
//   variables:                # UEFI variables measured into the firmware log
//     - guid: 8be4df61-93ca-11d2-aa0d-00e098032b8c
//       name: SecureBoot
//       values: ["01"]        # allowed VariableData (hex)
//     - guid: d719b2cb-3d3a-4596-a3bc-dad00e67656f
//       name: db
//       pcr: 7                # optional: only events in this PCR
//       data_sha256: ["…"]    # allowed SHA-256 of VariableData
//   applications:             # every image PCR 4 measured must match one entry
//     - path: '\EFI\BOOT\BOOTX64.EFI'   # optional
//       sha256: ["…"]         # allowed Authenticode digests, per bank
//   require_event_log: true   # evidence without a firmware event log fails
//   require_ima_log: false
//
// "events:" (rules keyed on event types) is refused with an explanation.
struct ReferencePolicy {
  std::map<uint16_t, std::set<unsigned>> required_pcrs;                  // bank (TPM_ALG_ID) → PCRs
  std::map<uint16_t, std::map<unsigned, std::vector<Bytes>>> pcrs;       // bank → PCR → allowed values
  std::vector<VariableRule> variables;
  std::vector<ApplicationRule> applications;  // empty: no application rule
  bool require_event_log = false;
  bool require_ima_log = false;

  // Whether evaluating this policy needs the firmware log / the IMA list (a device includes them
  // in its platform report when it does).
  bool needs_event_log() const { return require_event_log || !variables.empty() || !applications.empty(); }
  bool needs_ima_log() const { return require_ima_log; }
};

// Parses the YAML above. Checks: the document is a mapping; no mapping anywhere holds a key twice;
// only the listed keys; bank names sha1/sha256/sha384/sha512; PCR indices 0..23 without leading
// zeros; hex values of the bank's digest size; GUIDs in 8-4-4-4-12 form; variable names non-empty;
// each variable rule with values or data_sha256, each (GUID, name, PCR) once; each application
// entry with at least one bank of digests. Every error is InvalidArgument naming the key and its
// line ("policy line 7: unknown key \"pcr\"").
[[nodiscard]] Result<ReferencePolicy> parse_policy(std::string_view yaml);
[[nodiscard]] Result<ReferencePolicy> load_policy(const std::filesystem::path& path);

}  // namespace mcimd::attestation
