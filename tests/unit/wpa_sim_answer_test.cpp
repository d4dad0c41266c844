// What the bridge tells wpa_supplicant for each answer of mcimd's USIM application.
#include <gtest/gtest.h>

#include "wpa-sim/answer.hpp"

using namespace mcimd;
using namespace mcimd::wpasim;

namespace {

struct StandInUsim final : Usim {
  api::CallResult<api::UmtsAuthResult> umts = api::UmtsAuthResult{};
  api::CallResult<std::vector<api::GsmAuthResult>> gsm = std::vector<api::GsmAuthResult>{};
  api::CallResult<api::UmtsAuthResult> umts_authenticate(const Bytes&, const Bytes&) override { return umts; }
  api::CallResult<std::vector<api::GsmAuthResult>> gsm_authenticate(const std::vector<Bytes>&) override { return gsm; }
  api::CallResult<api::ProfileProperties> profile = api::ProfileProperties{
      "/org/mcimd/Tre1/Profile/1", 1, "8949001234567890123", "001010123456789", "00101", "enabled", "operational"};
  api::CallResult<api::ProfileProperties> subscriber() override { return profile; }
};

SecureBytes filled(std::size_t n, uint8_t v) { return SecureBytes(n, v); }
std::string text(const SecureString& s) { return std::string(s.begin(), s.end()); }
SimRequest umts_request() { return SimRequest{9, UmtsChallenge{Bytes(16, 1), Bytes(16, 2)}}; }
tl::unexpected<api::CallError> error(const char* name) { return tl::unexpected(api::CallError{name, "refused"}); }

}  // namespace

TEST(TheBridge, AnswersResCkIkAsUmtsAuth) {
  StandInUsim usim;
  usim.umts = api::UmtsAuthResult{filled(8, 0xaa), filled(16, 0xcc), filled(16, 0x11), std::nullopt};
  Answer a = answer(umts_request(), usim);
  EXPECT_FALSE(a.failed);
  EXPECT_EQ(text(a.command), "CTRL-RSP-SIM-9:UMTS-AUTH:" + std::string(32, '1') + ":" + std::string(32, 'c') + ":" +
                                 std::string(16, 'a'));
  EXPECT_EQ(a.summary.find("aaaa"), std::string::npos);
}

TEST(TheBridge, AnswersAutsAsUmtsAuts) {
  StandInUsim usim;
  api::UmtsAuthResult r;
  r.auts = Bytes(14, 0x0f);
  usim.umts = r;
  Answer a = answer(umts_request(), usim);
  EXPECT_FALSE(a.failed);
  EXPECT_EQ(text(a.command), "CTRL-RSP-SIM-9:UMTS-AUTS:0f0f0f0f0f0f0f0f0f0f0f0f0f0f");
}

TEST(TheBridge, AnswersUmtsFailOnEveryError) {
  for (const char* name : {"org.mcimd.Tre1.Error.MacFailure", "org.mcimd.Tre1.Error.PlatformStateChanged",
                           "org.mcimd.Tre1.Error.NotAuthorized", "org.freedesktop.DBus.Error.NoServer"}) {
    StandInUsim usim;
    usim.umts = error(name);
    Answer a = answer(umts_request(), usim);
    EXPECT_TRUE(a.failed) << name;
    EXPECT_EQ(text(a.command), "CTRL-RSP-SIM-9:UMTS-FAIL") << name;
    EXPECT_NE(a.summary.find(api::CallError{name, ""}.short_name()), std::string::npos) << a.summary;
  }
}

TEST(TheBridge, AnswersUmtsFailWhenMcimdAnswersNonsense) {
  StandInUsim usim;
  usim.umts = api::UmtsAuthResult{filled(8, 0xaa), std::nullopt, filled(16, 0x11), std::nullopt};
  EXPECT_EQ(text(answer(umts_request(), usim).command), "CTRL-RSP-SIM-9:UMTS-FAIL");
  usim.umts = api::UmtsAuthResult{filled(2, 0xaa), filled(16, 0xcc), filled(16, 0x11), std::nullopt};
  EXPECT_EQ(text(answer(umts_request(), usim).command), "CTRL-RSP-SIM-9:UMTS-FAIL");
  api::UmtsAuthResult short_auts;
  short_auts.auts = Bytes(6, 0);
  usim.umts = short_auts;
  EXPECT_EQ(text(answer(umts_request(), usim).command), "CTRL-RSP-SIM-9:UMTS-FAIL");
}

TEST(TheBridge, AnswersOneKcAndSresPerGsmRand) {
  StandInUsim usim;
  usim.gsm = std::vector<api::GsmAuthResult>{{filled(4, 0x22), filled(8, 0x11)}, {filled(4, 0x44), filled(8, 0x33)}};
  SimRequest r{1, GsmChallenge{{Bytes(16, 1), Bytes(16, 2)}}};
  Answer a = answer(r, usim);
  EXPECT_EQ(text(a.command), "CTRL-RSP-SIM-1:GSM-AUTH:1111111111111111:22222222:3333333333333333:44444444");
  SimRequest three{1, GsmChallenge{{Bytes(16, 1), Bytes(16, 2), Bytes(16, 3)}}};
  EXPECT_EQ(text(answer(three, usim).command), "CTRL-RSP-SIM-1:GSM-FAIL");
  usim.gsm = error("org.mcimd.Tre1.Error.NotFound");
  EXPECT_EQ(text(answer(r, usim).command), "CTRL-RSP-SIM-1:GSM-FAIL");
}

TEST(TheBridge, AnswersAnIdentityQuestionWithThePermanentIdentityForTheNetworksMethod) {
  StandInUsim usim;
  auto a = answer_identity(5, "AKA'", usim, std::nullopt);
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->failed);
  EXPECT_EQ(text(a->command), "CTRL-RSP-IDENTITY-5:6001010123456789@wlan.mnc001.mcc001.3gppnetwork.org");
  EXPECT_EQ(a->summary.find("001010123456789"), std::string::npos) << "the IMSI stays out of the log";
  EXPECT_EQ(text(answer_identity(5, "AKA AKA'", usim, std::nullopt)->command),
            "CTRL-RSP-IDENTITY-5:0001010123456789@wlan.mnc001.mcc001.3gppnetwork.org");
  EXPECT_EQ(text(answer_identity(5, "SIM", usim, 3)->command),
            "CTRL-RSP-IDENTITY-5:1001010123456789@wlan.mnc010.mcc001.3gppnetwork.org");
}

TEST(TheBridge, LeavesOtherNetworksIdentityQuestionsToOthers) {
  StandInUsim usim;
  EXPECT_FALSE(answer_identity(5, "PEAP", usim, std::nullopt));
  EXPECT_FALSE(answer_identity(5, "FAIL", usim, std::nullopt));
}

TEST(TheBridge, SendsNoIdentityWhenItCannotTellOne) {
  StandInUsim usim;
  usim.profile = error("org.mcimd.Tre1.Error.InvalidState");
  auto a = answer_identity(5, "AKA", usim, std::nullopt);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->failed);
  EXPECT_TRUE(a->command.empty());
  EXPECT_NE(a->summary.find("InvalidState"), std::string::npos) << a->summary;

  usim.profile = api::ProfileProperties{"/org/mcimd/Tre1/Profile/1", 1, "8949001234567890123", "001010123456789",
                                        "acme", "enabled", "operational"};
  a = answer_identity(5, "AKA", usim, std::nullopt);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->command.empty());
  EXPECT_NE(a->summary.find("--mnc-length"), std::string::npos) << a->summary;
  EXPECT_EQ(text(answer_identity(5, "AKA", usim, 2)->command),
            "CTRL-RSP-IDENTITY-5:0001010123456789@wlan.mnc001.mcc001.3gppnetwork.org");
}

TEST(TheBridge, GivesAnIdentityQuestionNoChallengeAnswer) {
  StandInUsim usim;
  Answer a = answer(SimRequest{2, IdentityQuestion{}}, usim);
  EXPECT_TRUE(a.failed);
  EXPECT_TRUE(a.command.empty());
}
