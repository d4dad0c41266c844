#pragma once
// The signed PCR policies mcimd was given, and which of them approves the platform now.
// Policies are kept as files under <store>/policies; each authenticates itself by the
// authority's signature (checked in software when read, and by the TPM before first use), so
// the folder needs no MAC: a file that does not verify is left out with a message.
// Worker thread only.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "mcim-store/store.hpp"
#include "protocol/pcr_policy.hpp"
#include "tpm/tpm.hpp"

namespace mcimd::daemon {

struct PolicyRules {
  tpm::PcrSelection required;           // every policy must bind at least these
  bool allow_resettable_pcrs = false;   // PCRs 16 and 23
};

struct PolicySummary {
  std::string id;                       // protocol::policy_id
  std::string pcrs;                     // "sha256:7,16"
  bool active = false;                  // approves the platform now, as last checked
};

class PlatformPolicies {
 public:
  PlatformPolicies(std::filesystem::path dir, PolicyRules rules);

  // Sets the authority (nullopt: none configured) and reads every policy file it signed.
  // Files that do not parse, verify or follow the rules are left out (named in `skipped`).
  [[nodiscard]] Status load(std::optional<protocol::PolicyAuthority> authority, std::vector<std::string>& skipped);
  bool has_authority() const { return authority_.has_value(); }
  // authPolicy of every object bound to the configured authority. InvalidState without one.
  [[nodiscard]] Result<Bytes> auth_policy() const;
  // authPolicy of a profile's objects: bound to the authority and, when given, to the profile's
  // deletion counter (protocol::bound_policy_digest).
  [[nodiscard]] Result<Bytes> auth_policy(const std::optional<store::DeletionBinding>& deletion) const;
  [[nodiscard]] Result<Bytes> authority_name() const;
  // The authority's marshaled TPM2B_PUBLIC (what a package request names). InvalidState without one.
  [[nodiscard]] Result<Bytes> authority_public() const;

  // Checks a new policy document (parse; signature by the configured authority; the rules:
  // binds the required PCRs, no resettable PCR unless allowed) and keeps it. Returns its id.
  // Adding a policy that is kept already is not an error.
  [[nodiscard]] Result<std::string> add(std::string_view document);

  // The policy that approves the PCR values now, ready for a policy session: reads the PCRs
  // (one TPM2_PCR_Read per bank) and has the TPM verify the policy's signature once (the ticket
  // is kept). PlatformStateChanged naming the PCRs that differ from the closest policy when none
  // approves them, or saying that none was given.
  [[nodiscard]] Result<const tpm::ApprovedPolicy*> select(tpm::Context& tpm);
  // The policy select() chose last, while it is believed to hold.
  const tpm::ApprovedPolicy* active() const;
  // A use under the active policy failed: the next select() reads the PCRs again.
  void forget_active() { active_.reset(); }
  // Tickets are TPM-specific: forget them when the TPM context is replaced.
  void forget_tickets();

  std::vector<PolicySummary> list() const;
  std::size_t size() const { return policies_.size(); }

 private:
  struct Entry {
    protocol::SignedPcrPolicy policy;
    std::optional<tpm::ApprovedPolicy> approved;  // once the TPM verified the signature
  };
  [[nodiscard]] Status check_rules(const protocol::SignedPcrPolicy& policy) const;

  std::filesystem::path dir_;
  PolicyRules rules_;
  std::optional<protocol::PolicyAuthority> authority_;
  std::map<std::string, Entry> policies_;  // by id
  std::optional<std::string> active_;
};

}  // namespace mcimd::daemon
