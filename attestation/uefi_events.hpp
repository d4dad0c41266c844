#pragma once
// What the events of a firmware log say, read only where their digests vouch for it. An event's
// type, PCR index and data travel beside its digests; only the digests are extended into the PCR.
// So a verifier may trust an event's data only where the digests are its hash, and may never key
// a decision on the type alone (relabelling the SecureBoot variable's event as EV_EFI_ACTION
// leaves the PCRs as they were). Parsed from hostile input: every read bounds-checked.
//
// UEFI variable events (PC Client PFP §10.2.6 UEFI_VARIABLE_DATA; the real logs in
// tests/data/eventlogs show which part the digest covers):
//   EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EFI_VARIABLE_AUTHORITY, EV_EFI_VARIABLE_BOOT2: the digest is
//     the hash of the whole UEFI_VARIABLE_DATA, so GUID, name and data are all covered;
//   EV_EFI_VARIABLE_BOOT: EDK2-derived firmware (Tcg2Dxe MeasureVariable; the OVMF, GCE, bootorder,
//     moklisttrusted and sd-boot logs) hashes VariableData only, other firmware (the arch-linux and
//     postcode logs) the whole structure. With the data alone the name is not covered: such events
//     are accepted only for the boot variables (BootOrder, Boot####) in PCR 1, flagged so.
// EFI applications (EV_EFI_BOOT_SERVICES_APPLICATION, PFP §10.2.3 UEFI_IMAGE_LOAD_EVENT): the
//   digest is the image's Authenticode hash, so the device path (and the file path in it) is not
//   covered at all; only the digest identifies what ran.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/eventlog.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::attestation {

// An EFI_GUID as stored: Data1 (u32), Data2, Data3 (u16) little-endian, then Data4's 8 bytes.
using Guid = std::array<uint8_t, 16>;
// "8be4df61-93ca-11d2-aa0d-00e098032b8c" (RFC 4122 text form, lower case).
std::string guid_to_string(const Guid& guid);
std::optional<Guid> guid_from_string(std::string_view text);

// UEFI 2.x §3.3 EFI_GLOBAL_VARIABLE: SecureBoot, PK, KEK, BootOrder, Boot####.
inline constexpr Guid kEfiGlobalVariable = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                            0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};

// PFP §10.2.6 UEFI_VARIABLE_DATA.
struct UefiVariable {
  Guid guid{};
  std::string name;  // UnicodeName as UTF-8
  Bytes data;        // VariableData
};
// Checks: at least 32 bytes of header; UnicodeNameLength 1..kMaxVariableName characters of valid
// UTF-16 without NUL; 32 + 2·UnicodeNameLength + VariableDataLength equals the size exactly.
// InvalidArgument "bad_variable: …" otherwise.
inline constexpr std::size_t kMaxVariableName = 1024;
[[nodiscard]] Result<UefiVariable> parse_uefi_variable(std::span<const uint8_t> data);

// PFP §10.2.3 UEFI_IMAGE_LOAD_EVENT, and the file path its device path names (the Media File
// Path nodes, UEFI 2.x §10.3.5.4, joined in order), when it names one.
struct ImageLoad {
  uint64_t location = 0;
  uint64_t length = 0;
  uint64_t link_time_address = 0;
  Bytes device_path;
  std::optional<std::string> file_path;  // e.g. "\EFI\BOOT\BOOTX64.EFI"
};
// Checks: 32 bytes of header, LengthOfDevicePath within the data, every device path node's length
// at least 4 and within the path, at most kMaxDevicePathNodes nodes, file path names valid
// UTF-16. InvalidArgument "bad_image_load: …" otherwise. Bytes after the device path are ignored
// (some firmware leaves them; none of this is covered by the digest anyway).
inline constexpr std::size_t kMaxDevicePathNodes = 256;
[[nodiscard]] Result<ImageLoad> parse_image_load(std::span<const uint8_t> data);

// A UEFI variable an event measured, with the digest vouching for it.
struct MeasuredVariable {
  std::size_t sequence = 0;  // the event's position in the log
  unsigned pcr = 0;
  uint32_t type = 0;         // as the log claims it (not covered)
  UefiVariable variable;
  bool name_covered = true;  // false: the digest covers VariableData only (EV_EFI_VARIABLE_BOOT)
};

// A PCR 4 measurement that is not a verified EV_SEPARATOR or EV_EFI_ACTION: what the boot
// manager loaded and ran (PFP §3.3.4.5), whatever type the log gives it.
struct LoadedImage {
  std::size_t sequence = 0;
  uint32_t type = 0;                     // as claimed
  std::vector<EventDigest> digests;      // the Authenticode hash in each bank
  std::optional<std::string> file_path;  // from the device path: not covered by the digest
};

struct UnverifiedEvent {
  std::size_t sequence = 0;
  uint32_t type = 0;
  std::string reason;
};

// The events of a log read by what their digests cover:
//   variables   every event whose data is a UEFI_VARIABLE_DATA that all its digests (in the banks
//               this verifier hashes) are the hash of — whatever type it claims — and EV_EFI_VARIABLE_BOOT
//               events in PCR 1 for BootOrder/Boot#### whose digests are the hash of VariableData;
//   unverified  events claiming a variable type that are neither: their content is not what was
//               measured, so no variable rule can be judged while they are in the log;
//   images      PCR 4 events other than EV_SEPARATOR (4 bytes) and EV_EFI_ACTION (printable ASCII)
//               whose digests are the hash of their data.
struct EventContent {
  std::vector<MeasuredVariable> variables;
  std::vector<UnverifiedEvent> unverified_variables;
  std::vector<LoadedImage> images;
};
EventContent read_event_content(const EventLog& log);

}  // namespace mcimd::attestation
