// TPM layer pieces that need no TPM: response-code classification and PCR selection parsing.
#include <gtest/gtest.h>

#include "tpm/rc.hpp"
#include "tpm/testing.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;
using namespace mcimd::tpm;

namespace {

// TPM 2.0 Part 2 §6.6 values, spelled out so the test does not lean on the code under test.
constexpr uint32_t kRcYielded = 0x908;
constexpr uint32_t kRcPolicyFail = 0x09D;
constexpr uint32_t kRcPcr = 0x127;
constexpr uint32_t kRcModeP2 = 0x089 | 0x040 | 0x200;  // TPM_RC_MODE on parameter 2
constexpr uint32_t kRcHandle1 = 0x08B | 0x100;        // TPM_RC_HANDLE on handle 1
constexpr uint32_t kResMgrTpmLayer = 12u << 16;       // TSS2_RESMGR_TPM_RC_LAYER
constexpr uint32_t kTctiIoError = (10u << 16) | 10u;  // TSS2_TCTI_RC_IO_ERROR

}  // namespace

TEST(AResponseCode, IsClassifiedWithoutItsHandleSessionOrParameterNumber) {
  EXPECT_EQ(classify_rc(0), RcKind::Success);
  EXPECT_EQ(classify_rc(seam::kRcRetry), RcKind::Retry);
  EXPECT_EQ(classify_rc(kRcYielded), RcKind::Retry);
  EXPECT_EQ(classify_rc(seam::kRcTesting), RcKind::Retry);
  EXPECT_EQ(classify_rc(seam::kRcPcrChanged), RcKind::PcrChanged);
  EXPECT_EQ(classify_rc(kRcPolicyFail), RcKind::PolicyFailed);
  EXPECT_EQ(classify_rc(seam::kRcPolicyFailS1), RcKind::PolicyFailed);
  EXPECT_EQ(classify_rc(kRcPcr), RcKind::PolicyFailed);
  EXPECT_EQ(classify_rc(seam::kRcCommandCode), RcKind::Unsupported);
  EXPECT_EQ(classify_rc(kRcModeP2), RcKind::Unsupported);
  EXPECT_EQ(classify_rc(kRcHandle1), RcKind::HandleAbsent);
  EXPECT_EQ(rc_base(seam::kRcPolicyFailS1), kRcPolicyFail);
}

TEST(AResponseCode, RelayedByAResourceManagerIsClassifiedLikeTheTpmsOwn) {
  EXPECT_EQ(classify_rc(kResMgrTpmLayer | seam::kRcRetry), RcKind::Retry);
  EXPECT_EQ(classify_rc(kResMgrTpmLayer | seam::kRcPolicyFailS1), RcKind::PolicyFailed);
}

TEST(AResponseCode, FromAnotherLayerIsNeverMistakenForATpmCode) {
  EXPECT_EQ(classify_rc(kTctiIoError), RcKind::Other);
  EXPECT_EQ(rc_base(kTctiIoError), kTctiIoError);
}

TEST(AResponseCode, BecomesAnErrorNamingTheActionAndTheDecodedReason) {
  auto e = tpm_error("unseal", seam::kRcPolicyFailS1);
  EXPECT_EQ(e.code, Code::PlatformStateChanged);
  EXPECT_EQ(e.tss2_rc(), seam::kRcPolicyFailS1);
  EXPECT_EQ(e.message.rfind("Failed to unseal: ", 0), 0u) << e.message;
  EXPECT_NE(e.message.find("platform state no longer matches"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("policy check failed"), std::string::npos) << e.message;

  auto u = tpm_error("encrypt", seam::kRcCommandCode);
  EXPECT_EQ(u.code, Code::Unsupported);

  auto t = tpm_error("open the TPM transport", kTctiIoError);
  EXPECT_EQ(t.code, Code::TpmFailure);
  EXPECT_NE(t.message.find("tcti"), std::string::npos) << t.message;
}

TEST(APcrSelection, ParsesBankAndSortedIndices) {
  auto sel = parse_pcr_selection("sha256:14,7,0");
  ASSERT_TRUE(sel) << sel.error().describe();
  EXPECT_EQ(sel->bank, "sha256");
  EXPECT_EQ(sel->pcrs, (std::vector<unsigned>{0, 7, 14}));
  EXPECT_EQ(to_string(*sel), "sha256:0,7,14");
  for (const char* text : {"sha1:23", "sha384:0", "sha512:1,2"}) {
    auto s = parse_pcr_selection(text);
    ASSERT_TRUE(s) << text;
    EXPECT_EQ(to_string(*s), text);
  }
}

TEST(APcrSelection, IsRefusedWithAMessageNamingTheProblem) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (auto [text, says] : {Case{"", "BANK:PCR"}, Case{"7,14", "BANK:PCR"}, Case{"md5:7", "Unknown PCR bank 'md5'"},
                            Case{":7", "Unknown PCR bank ''"}, Case{"sha256:", "lists no PCR"},
                            Case{"sha256:24", "'24'"}, Case{"sha256:7,", "''"}, Case{"sha256:,7", "''"},
                            Case{"sha256:x", "'x'"}, Case{"sha256:-1", "'-1'"}, Case{"sha256: 7", "' 7'"},
                            Case{"sha256:7a", "'7a'"}, Case{"sha256:99999999999", "'99999999999'"},
                            Case{"sha256:7,7", "listed twice"}, Case{"SHA256:7", "Unknown PCR bank"}}) {
    auto sel = parse_pcr_selection(text);
    ASSERT_FALSE(sel) << "accepted '" << text << "'";
    EXPECT_EQ(sel.error().code, Code::InvalidArgument) << text;
    EXPECT_NE(sel.error().message.find(says), std::string::npos) << text << " → " << sel.error().message;
  }
}
