#pragma once
// The authentication centre's side of each subscription the operator provisions: K, OPc and IMSI
// per ICCID, one file DIR/<iccid>.json (0600, in a 0700 directory), where the network's AuC/HSS
// reads them. Written before any package carries the subscription, so no MCIM exists on a device
// that the network could not authenticate; a re-key (mcim-operator rekey) replaces its K and OPc.
//   {"format":"mcim-operator-auc-1","iccid":DIGITS,"imsi":DIGITS,"k":HEX32,"opc":HEX32,"amf":"8000"}
#include <filesystem>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::op {

struct AucRecord {
  std::string iccid;  // 18–20 digits
  std::string imsi;   // 6–15 digits
  SecureBytes k;      // 16 bytes
  SecureBytes opc;    // 16 bytes
};

// Writes a record atomically. InvalidArgument for a malformed ICCID/IMSI or key sizes;
// AlreadyExists when the ICCID has a record (a subscription's keys are never replaced here).
[[nodiscard]] Status write_auc_record(const std::filesystem::path& dir, const AucRecord& record);
// Replaces the K and OPc of the existing record of record.iccid atomically (the file stays 0600:
// a reader sees the old keys or the new). Checks, in order: the record's form as write_auc_record
// does (InvalidArgument); a record for the ICCID exists (NotFound) and reads (StoreCorrupt); it
// has record.imsi (InvalidArgument: a re-key keeps the subscription, IMSI included).
[[nodiscard]] Status replace_auc_keys(const std::filesystem::path& dir, const AucRecord& record);
// Reads one. NotFound without a record; StoreCorrupt for one that does not parse or names
// another ICCID.
[[nodiscard]] Result<AucRecord> read_auc_record(const std::filesystem::path& dir, std::string_view iccid);

}  // namespace mcimd::op
