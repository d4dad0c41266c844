#pragma once
// Reference policy: what a verifier accepts for one class of device — PCR values per bank,
// digests per event type, the PCRs a quote must cover. Written in YAML by the operator; in
// semi-autonomous mode it travels signed (jws.hpp) and the device checks it locally.
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::attestation {

// YAML form (every key optional, any other key refused):
//
//   required_pcrs:            # the quote must cover at least these PCRs of these banks
//     sha256: [0, 2, 4, 7]
//   pcrs:                     # quoted value must be one of these (hex)
//     sha256:
//       7: ["a1b2…", "c3d4…"]
//   events:                   # every event of this type must carry one of these digests
//     EV_EFI_BOOT_SERVICES_APPLICATION:
//       sha256: ["…"]
//   require_event_log: true   # evidence without a firmware event log fails
//   require_ima_log: false
struct ReferencePolicy {
  std::map<uint16_t, std::set<unsigned>> required_pcrs;                  // bank (TPM_ALG_ID) → PCRs
  std::map<uint16_t, std::map<unsigned, std::vector<Bytes>>> pcrs;       // bank → PCR → allowed values
  std::map<uint32_t, std::map<uint16_t, std::vector<Bytes>>> events;     // event type → bank → digests
  bool require_event_log = false;
  bool require_ima_log = false;
};

// Parses the YAML above. Checks: the document is a mapping; only the listed keys; bank names
// sha1/sha256/sha384/sha512; PCR indices 0..23; event types by their TCG names
// (EV_EFI_BOOT_SERVICES_APPLICATION, …); hex values of the bank's digest size. Every error is
// InvalidArgument naming the key and its line ("policy line 7: unknown key \"pcr\"").
[[nodiscard]] Result<ReferencePolicy> parse_policy(std::string_view yaml);
[[nodiscard]] Result<ReferencePolicy> load_policy(const std::filesystem::path& path);

}  // namespace mcimd::attestation
