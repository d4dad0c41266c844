#pragma once
// A policy authority for tests: a fresh ECC P-256 key that signs PCR policies, the authPolicy
// objects bound to it carry, and the step that turns a signed policy into one the TPM accepts.
#include <filesystem>
#include <string>

#include "protocol/pcr_policy.hpp"
#include "tpm/tpm.hpp"

namespace mcimd::test {

class TestAuthority {
 public:
  TestAuthority();
  const std::string& private_pem() const { return private_pem_; }
  std::string public_pem() const;
  const protocol::PolicyAuthority& authority() const { return authority_; }
  // PolicyAuthorize(authority, kPcrPolicyRef): the authPolicy of every object bound to it.
  Bytes auth_policy() const;
  tpm::SealOptions seal_options() const { return tpm::SealOptions{auth_policy(), /*no_da=*/true}; }
  protocol::SignedPcrPolicy sign(const protocol::PcrValues& values) const;
  // Signs the current values of `pcrs` (bank sha256) as read from the TPM.
  protocol::SignedPcrPolicy sign_current(tpm::Context& tpm, const std::vector<unsigned>& pcrs) const;
  // Writes the public key (PEM) and returns its path.
  std::filesystem::path write_public(const std::filesystem::path& dir) const;
  std::filesystem::path write_private(const std::filesystem::path& dir) const;

 private:
  std::string private_pem_;
  protocol::PolicyAuthority authority_;
};

// Verifies the signed policy in the TPM and returns what a policy session needs.
tpm::ApprovedPolicy approve(tpm::Context& tpm, const protocol::PolicyAuthority& authority,
                            const protocol::SignedPcrPolicy& policy);

// Current sha256 values of `pcrs` as a PcrValues.
protocol::PcrValues current_pcrs(tpm::Context& tpm, const std::vector<unsigned>& pcrs);

}  // namespace mcimd::test
