#pragma once
// TSS2 return codes: what a code means for the caller, and the one place a code becomes an Error.
#include <cstdint>
#include <string_view>

#include "common/error.hpp"

namespace mcimd::tpm {

enum class RcKind {
  Success,
  Retry,         // TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING: send the same command again
  NvRate,        // TPM_RC_NV_RATE, TPM_RC_NV_UNAVAILABLE: NV is rate-limited; again, after a longer pause
  PcrChanged,    // TPM_RC_PCR_CHANGED: redo the policy and the command
  PolicyFailed,  // TPM_RC_POLICY_FAIL, TPM_RC_PCR: the platform state no longer matches
  Unsupported,   // TPM_RC_COMMAND_CODE, TPM_RC_MODE
  HandleAbsent,  // TPM_RC_HANDLE: e.g. no persistent object / NV index at that handle
  Stale,         // TPM_RC_REFERENCE_H0..H6/S0..S6: a handle or session we hold is no longer loaded
  SlotsFull,     // TPM_RC_OBJECT_MEMORY/SESSION_MEMORY/OBJECT_HANDLES/SESSION_HANDLES: no free slot
  BadAuth,       // TPM_RC_BAD_AUTH, TPM_RC_AUTH_FAIL: wrong authValue
  Other,
};

// A TPM response code without the handle/session/parameter number of format-one codes
// (TPM 2.0 Part 2 §6.6.3) and without the layer a resource manager adds when it relays a TPM
// code. Codes from other layers (ESAPI, TCTI) are returned unchanged.
uint32_t rc_base(uint32_t rc);
RcKind classify_rc(uint32_t rc);

// "Failed to <what>: <Tss2_RC_Decode(rc)>" with the raw code kept, as TpmFailure,
// PlatformStateChanged, Unsupported, Busy (no free slot) or NotAuthorized per classify_rc.
Error tpm_error(std::string_view what, uint32_t rc);

}  // namespace mcimd::tpm
