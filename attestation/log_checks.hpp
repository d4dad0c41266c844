#pragma once
// The logs against the quote: a firmware event log and an IMA list are evidence only as far as
// they replay to PCR values the TPM signed.
#include <cstddef>
#include <string>
#include <string_view>

#include "attestation/eventlog.hpp"
#include "attestation/ima.hpp"
#include "common/error.hpp"

namespace mcimd::attestation {

// eventlog.replay. Checks, for every bank the quote covers:
//   - a bank the log declares and can be replayed in: every covered PCR (EventLogReplay::covered:
//     0–7 and every PCR the log extends) the quote covers equals its replay — a covered PCR whose
//     events were removed from the log replays to its initial value and fails;
//   - a bank the log declares but cannot be replayed in: fails when the quote covers a covered PCR
//     of it;
//   - a bank the log does not declare says nothing.
// At least one quoted PCR must have been compared. `detail` says how many.
[[nodiscard]] Status check_event_log_replay(const EventLogReplay& replay, const PcrValues& quoted, std::string& detail);

struct ImaVerification {
  std::size_t quoted_entries = 0;    // the prefix of the list the quote covers
  std::size_t appended_entries = 0;  // after it: measured after the quote, not verified
  std::string detail;
};

// ima.replay. Checks: the list parses within the limits and is not empty; PCR 10 is quoted in at
// least one bank; in every quoted bank of PCR 10 a prefix of the list replays to the quoted value
// (sha1: the template hashes; other banks: per-bank template digests, else padded SHA-1 template
// hashes), the same prefix in every bank; every entry of that prefix that is not a violation has a
// template this verifier knows (ima, ima-ng, ima-sig, ima-buf) whose SHA-1 is its template hash.
// Entries after the prefix were appended after the quote (Keylime does the same) and are not
// verified.
[[nodiscard]] Result<ImaVerification> check_ima_replay(const std::vector<ImaEntry>& entries, const PcrValues& quoted);

// ima.boot_aggregate. Checks: the first entry is PCR 10's "boot_aggregate", and its file digest
// is ima_boot_aggregate() over the quoted PCRs in the bank of its hash algorithm.
[[nodiscard]] Status check_ima_boot_aggregate(const std::vector<ImaEntry>& entries, const PcrValues& quoted);

}  // namespace mcimd::attestation
