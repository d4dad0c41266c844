#pragma once
// Evaluating a reference policy against what the quote and the logs proved.
#include <string>
#include <vector>

#include "attestation/check.hpp"
#include "attestation/eventlog.hpp"
#include "attestation/policy.hpp"
#include "attestation/uefi_events.hpp"

namespace mcimd::attestation {

struct PolicyInputs {
  const PcrValues* quoted = nullptr;  // quoted PCR values, already matched against the quote's digest
  bool has_event_log = false;
  bool has_ima_log = false;
  // The firmware log's content, only when the log replayed to the quoted PCRs; otherwise why not.
  const EventContent* content = nullptr;
  std::string no_content_reason = "no firmware event log";
};

// Checks, each recorded:
//   policy.event_log / policy.ima_log   (when the policy requires them) the log is present
//   policy.required_pcrs   the quote covers every PCR the policy requires
//   policy.pcr[N]          for each PCR the policy lists: its quoted value in each listed bank is allowed
//   policy.variable[NAME]  for each variable rule: the log replayed; no event claims a variable type
//                          with content its digests do not cover; at least one event measures the
//                          variable (GUID, name, PCR when given); every such event's data is allowed
//   policy.applications    (with application rules) the log replayed; PCR 4 measured at least one
//                          image; every image matches an entry by digest (and by path where given)
void check_policy(const ReferencePolicy& policy, const PolicyInputs& inputs, std::vector<Check>& checks);

}  // namespace mcimd::attestation
