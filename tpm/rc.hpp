#pragma once
// TSS2 return codes: what a code means for the caller, and the one place a code becomes an Error.
#include <cstdint>
#include <string_view>

#include "common/error.hpp"

namespace mcimd::tpm {

enum class RcKind {
  Success,
  Retry,         // TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING: send the same command again
  PcrChanged,    // TPM_RC_PCR_CHANGED: redo the policy and the command
  PolicyFailed,  // TPM_RC_POLICY_FAIL, TPM_RC_PCR: the platform state no longer matches
  Unsupported,   // TPM_RC_COMMAND_CODE, TPM_RC_MODE
  HandleAbsent,  // TPM_RC_HANDLE: e.g. no persistent object / NV index at that handle
  Other,
};

// A TPM response code without the handle/session/parameter number of format-one codes
// (TPM 2.0 Part 2 §6.6.3) and without the layer a resource manager adds when it relays a TPM
// code. Codes from other layers (ESAPI, TCTI) are returned unchanged.
uint32_t rc_base(uint32_t rc);
RcKind classify_rc(uint32_t rc);

// "Failed to <what>: <Tss2_RC_Decode(rc)>" with the raw code kept, as TpmFailure,
// PlatformStateChanged or Unsupported per classify_rc.
Error tpm_error(std::string_view what, uint32_t rc);

}  // namespace mcimd::tpm
