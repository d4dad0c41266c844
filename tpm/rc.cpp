#include "tpm/rc.hpp"

#include <tss2/tss2_common.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tpm2_types.h>

#include <string>

namespace mcimd::tpm {

uint32_t rc_base(uint32_t rc) {
  uint32_t layer = rc & TSS2_RC_LAYER_MASK;
  // A resource manager relays the TPM's own code in its layer; strip the layer to see it.
  if (layer == TSS2_RESMGR_TPM_RC_LAYER) rc &= ~TSS2_RC_LAYER_MASK;
  else if (layer != TSS2_TPM_RC_LAYER) return rc;
  // Part 2 §6.6.3: format-one codes carry the error in bits 0–5 and say in bits 6–11 which
  // handle, session or parameter it concerns.
  if (rc & TPM2_RC_FMT1) return rc & (TPM2_RC_FMT1 | 0x3F);
  return rc & 0xFFF;
}

RcKind classify_rc(uint32_t rc) {
  if (rc == TSS2_RC_SUCCESS) return RcKind::Success;
  switch (rc_base(rc)) {
    case TPM2_RC_RETRY:
    case TPM2_RC_YIELDED:
    case TPM2_RC_TESTING:
      return RcKind::Retry;
    case TPM2_RC_NV_RATE:
    case TPM2_RC_NV_UNAVAILABLE:
      return RcKind::NvRate;
    case TPM2_RC_PCR_CHANGED:
      return RcKind::PcrChanged;
    case TPM2_RC_OBJECT_MEMORY:
    case TPM2_RC_SESSION_MEMORY:
    case TPM2_RC_OBJECT_HANDLES:
    case TPM2_RC_SESSION_HANDLES:
      return RcKind::SlotsFull;
    case TPM2_RC_BAD_AUTH:
    case TPM2_RC_AUTH_FAIL:
      return RcKind::BadAuth;
    case TPM2_RC_POLICY_FAIL:
    case TPM2_RC_PCR:
      return RcKind::PolicyFailed;
    case TPM2_RC_COMMAND_CODE:
    case TPM2_RC_MODE:
      return RcKind::Unsupported;
    case TPM2_RC_HANDLE:
      return RcKind::HandleAbsent;
    default:
      // Part 2 §6.6.3: TPM_RC_REFERENCE_H0..H6 and _S0..S6 (RC_WARN + 0x010..0x01E, 0x017 unused).
      if (rc_base(rc) >= TPM2_RC_REFERENCE_H0 && rc_base(rc) <= TPM2_RC_REFERENCE_S6) return RcKind::Stale;
      return RcKind::Other;
  }
}

Error tpm_error(std::string_view what, uint32_t rc) {
  std::string message = "Failed to ";
  message += what;
  message += ": ";
  Code code = Code::TpmFailure;
  switch (classify_rc(rc)) {
    case RcKind::PolicyFailed:
      code = Code::PlatformStateChanged;
      message += "the platform state no longer matches the one the object was bound to (PCR policy not satisfied; ";
      message += Tss2_RC_Decode(rc);
      message += ")";
      return Error{code, std::move(message), rc};
    case RcKind::SlotsFull:
      code = Code::Busy;
      message += "the TPM has no free object or session slot; another client holds them (";
      message += Tss2_RC_Decode(rc);
      message += ")";
      return Error{code, std::move(message), rc};
    case RcKind::BadAuth:
      code = Code::NotAuthorized;
      message += "the TPM refused the authorization value (";
      message += Tss2_RC_Decode(rc);
      message += ")";
      return Error{code, std::move(message), rc};
    case RcKind::Unsupported:
      code = Code::Unsupported;
      message += "the TPM does not support it (";
      message += Tss2_RC_Decode(rc);
      message += ")";
      return Error{code, std::move(message), rc};
    default:
      message += Tss2_RC_Decode(rc);
      return Error{code, std::move(message), rc};
  }
}

}  // namespace mcimd::tpm
