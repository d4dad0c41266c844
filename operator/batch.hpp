#pragma once
// Batch provisioning (mcim-operator batch): registers the devices of a factory's enrolment
// records and builds an MCIM package for each, on every core, resumably. The work is a batch job
// in the registry, one item per record (keyed by the record's request path), so workers — threads
// of this process or other processes on the same registry — never take the same record, and a
// run that died is continued by the next one. docs/operations.md, "Batch provisioning".
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "attestation/policy.hpp"
#include "common/error.hpp"
#include "operator/batch_input.hpp"
#include "operator/policy_signing.hpp"
#include "operator/provisioning_steps.hpp"
#include "operator/registry.hpp"

namespace mcimd::op {

struct BatchProgress {
  std::size_t total = 0;   // records in the input
  std::size_t done = 0;    // finished, ok or failed, by any run of the job
  std::size_t failed = 0;  // of those, failed
  std::size_t done_now = 0;  // finished by this run: the rate is over these
  std::chrono::duration<double> elapsed{0};  // since this run started working
};

// "done/total (failed F), R/s, ETA …": one line, no newline.
std::string format_progress(const BatchProgress& progress);

struct BatchOptions {
  std::string job;                    // the batch job's id in the registry ([A-Za-z0-9._-]{1,64})
  std::filesystem::path out_dir;      // packages as <device>.jws (made 0700 if absent)
  std::filesystem::path auc_dir;      // AuC records of new subscriptions (operator/provisioning_steps.hpp)
  SubscriptionNumbering numbering;
  std::string operator_id;            // as packages name it
  std::optional<attestation::ReferencePolicy> policy;  // platform states packages are made for
  std::chrono::seconds package_lifetime = std::chrono::hours{24};
  // A subsidy lock every package of the job carries (protocol::ProfileRules::locked_until): the
  // devices refuse to change operator before then.
  std::optional<Timestamp> locked_until;
  unsigned workers = 1;
  std::chrono::milliseconds progress_interval{250};
  // Called from the calling thread every progress_interval while workers run, and once with
  // final = true when they are done.
  std::function<void(const BatchProgress&, bool final)> progress;
};

struct BatchReport {
  std::vector<std::string> lines;  // one result line per record, in input order
  std::size_t ok = 0, failed = 0, unfinished = 0;
  // A registry failure that stopped workers (the lines then show what was left unfinished).
  std::optional<Error> stopped;
};

// Runs the job over `records`. First, when no other process on this machine runs the job (a lock
// file in out_dir says), items an interrupted run left running go back to pending; then every
// record is added as an item (items done or failed by an earlier run keep their result), and
// `workers` threads claim pending items until none is left. Per record, in order, its result
// line naming the first refusal:
//   read      the request file reads and parses as mcimd-package-request-1; the EK files, if
//             named, read (a TPM2B_PUBLIC; DER)
//   resumed   a package this job recorded for the record (an earlier run died after recording it)
//             whose file is in out_dir is the result, and nothing is made again
//   register  a device not in the registry is stored enrolled, with the AK of the request's
//             evidence, which must be the request's device (WrongDevice) — the factory vouches for
//             the records; a registered device keeps its AK (the request must use it) and, when
//             the record names an EK, must have that EK or none (WrongDevice)
//   request   check_package_request with the registered AK and the request's own operator nonce,
//             which the factory chose
//   platform  verify_device over that nonce, with the policy when given, else every check but
//             the policy's (AK, quote signature, nonce, PCR digest, clock, logs): NotAuthorized
//             naming the failed checks. Evidence an interrupted run of this job accepted (the
//             device's last clock is this quote's) is accepted again for a record it left running.
//   subscription  the record's subscription (NotFound; AlreadyExists when another device has it)
//             with K and OPc from its AuC record, else a new one (random ICCID, IMSI, K, OPc; its
//             AuC record written first), linked to the device
//   package   the next counter, build_package (with the job's subscription lock, if any),
//             out_dir/<device>.jws written atomically, then recorded in the registry
// The package and subscription ids are derived from the job and the record, so a record redone
// after a crash gets the same ones and never two packages. Errors are the lock's and registry's
// before the workers start; per-record failures are result lines.
[[nodiscard]] Result<BatchReport> run_batch(const Registry& registry, const std::vector<EnrolmentRecord>& records,
                                            const PolicySigner& signer, const BatchOptions& options);

// Result lines: "DEVICE ok PACKAGE_ID ICCID PATH" and "DEVICE error CODE message", the message
// made one line (control characters become spaces) and cut to fit kMaxBatchResultSize. DEVICE is
// "-" when the request does not say which device it is.
std::string result_ok_line(std::string_view device, std::string_view package_id, std::string_view iccid,
                           const std::filesystem::path& package);
std::string result_error_line(std::string_view device, const Error& error);

}  // namespace mcimd::op
