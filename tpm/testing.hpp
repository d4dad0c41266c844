#pragma once
// Test seam at the transport: a Context's TCTI can answer commands itself with a chosen response
// code instead of sending them, as a busy or changing TPM would. The TPM never sees an answered
// command, so its state stays consistent. For tests only.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "tpm/tpm.hpp"

namespace mcimd::tpm::seam {

// TPM 2.0 Part 2 §6.6 response codes and §6.5 command codes the tests use.
inline constexpr uint32_t kRcRetry = 0x922;          // TPM_RC_RETRY (RC_WARN + 0x022)
inline constexpr uint32_t kRcTesting = 0x90A;        // TPM_RC_TESTING (RC_WARN + 0x00A)
inline constexpr uint32_t kRcPcrChanged = 0x128;     // TPM_RC_PCR_CHANGED (RC_VER1 + 0x028)
inline constexpr uint32_t kRcCommandCode = 0x143;    // TPM_RC_COMMAND_CODE (RC_VER1 + 0x043)
inline constexpr uint32_t kRcPolicyFailS1 = 0x99D;   // TPM_RC_POLICY_FAIL (0x09D) + RC_S + RC_1
inline constexpr uint32_t kCcUnseal = 0x15E;         // TPM_CC_Unseal
inline constexpr uint32_t kCcPcrRead = 0x17E;        // TPM_CC_PCR_Read
inline constexpr uint32_t kCcEncryptDecrypt2 = 0x193;  // TPM_CC_EncryptDecrypt2
inline constexpr uint32_t kCcNvRead = 0x14E;         // TPM_CC_NV_Read
inline constexpr uint32_t kCcNvIncrement = 0x134;    // TPM_CC_NV_Increment
inline constexpr uint32_t kRcNvRate = 0x920;         // TPM_RC_NV_RATE (RC_WARN + 0x020)

inline constexpr uint32_t kTctiIoError = 0xA000A;   // TSS2_TCTI_RC_IO_ERROR: the transport fails

struct InjectedResponse {
  uint32_t rc = 0;            // TPM response code to answer with; a TSS2 TCTI-layer code fails the send
  unsigned count = 1;         // how many commands to answer
  uint32_t command_code = 0;  // only commands with this code; 0 = any command
  // Instead of answering: send the command to the TPM and flip this byte of its response, as an
  // interposer on the bus would (rc is ignored then).
  std::optional<std::size_t> flip_response_byte;
};

// Replaces any injection still pending.
void inject_response(Context& ctx, const InjectedResponse& injection);

}  // namespace mcimd::tpm::seam
