// wpa_supplicant's external SIM requests and the answers to them, as wpa_supplicant 2.10 writes
// and reads them (eap_aka.c, eap_sim.c, eapol_test.c / wpa_supplicant.c for the event text).
#include <gtest/gtest.h>

#include <string>

#include "wpa-sim/sim_request.hpp"

using namespace mcimd;
using namespace mcimd::wpasim;

namespace {

const std::string kRand = "23553cbe9637a89d218ae64dae47bf35";   // TS 35.208 set 1
const std::string kAutn = "55f328b43577b9b94a9ffac354dfafb3";
const std::string kRand2 = "000102030405060708090a0b0c0d0e0f";
const std::string kRand3 = "f0e0d0c0b0a090807060504030201000";

std::string text(const SecureString& s) { return std::string(s.begin(), s.end()); }

std::string refusal(std::string_view message) {
  auto r = parse_event(message);
  if (r) return "accepted";
  EXPECT_EQ(r.error().code == Code::InvalidArgument || r.error().code == Code::Unsupported, true);
  return r.error().message;
}

}  // namespace

TEST(AnExternalSimEvent, IsReadWithLevelPrefixAndSsidSuffix) {
  auto r = parse_event("<3>CTRL-REQ-SIM-7:UMTS-AUTH:" + kRand + ":" + kAutn + " needed for SSID office");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->network_id, 7u);
  const auto& c = std::get<UmtsChallenge>((*r)->challenge);
  EXPECT_EQ(to_hex(c.rand), kRand);
  EXPECT_EQ(to_hex(c.autn), kAutn);
}

TEST(AnExternalSimEvent, IsReadWithoutPrefixOrSuffixAndInUpperCase) {
  std::string upper_rand = "23553CBE9637A89D218AE64DAE47BF35";
  auto r = parse_event("CTRL-REQ-SIM-0:UMTS-AUTH:" + upper_rand + ":" + kAutn);
  ASSERT_TRUE(r && r->has_value());
  EXPECT_EQ(to_hex(std::get<UmtsChallenge>((*r)->challenge).rand), kRand);
}

TEST(AnExternalSimEvent, ToleratesAnySsidBytesAfterTheSuffix) {
  auto r = parse_event("<3>CTRL-REQ-SIM-1:UMTS-AUTH:" + kRand + ":" + kAutn + " needed for SSID :x: \x01\xff<>");
  ASSERT_TRUE(r && r->has_value());
}

TEST(AGsmEvent, CarriesTwoOrThreeRands) {
  auto two = parse_event("<3>CTRL-REQ-SIM-2:GSM-AUTH:" + kRand + ":" + kRand2 + " needed for SSID x");
  ASSERT_TRUE(two && two->has_value()) << (two ? "" : two.error().message);
  EXPECT_EQ(std::get<GsmChallenge>((*two)->challenge).rands.size(), 2u);
  auto three = parse_event("CTRL-REQ-SIM-2:GSM-AUTH:" + kRand + ":" + kRand2 + ":" + kRand3);
  ASSERT_TRUE(three && three->has_value());
  const auto& rands = std::get<GsmChallenge>((*three)->challenge).rands;
  ASSERT_EQ(rands.size(), 3u);
  EXPECT_EQ(to_hex(rands[2]), kRand3);
}

TEST(OtherMessages, AreNotRequests) {
  for (std::string m : {"", "OK", "PONG", "FAIL", "<3>CTRL-EVENT-EAP-STARTED EAP authentication started",
                        "<2>CTRL-EVENT-EAP-SUCCESS EAP authentication completed successfully",
                        "<3>CTRL-REQ-PASSWORD-0:Password needed for SSID x", "CTRL-REQ-SIM"}) {
    auto r = parse_event(m);
    ASSERT_TRUE(r) << m << ": " << r.error().message;
    EXPECT_FALSE(r->has_value()) << m;
  }
}

TEST(AMalformedRequest, IsRefusedWithANamedReason) {
  const std::string ok_tail = kRand + ":" + kAutn;
  EXPECT_EQ(refusal("CTRL-REQ-SIM-:UMTS-AUTH:" + ok_tail), "CTRL-REQ-SIM has no network id");
  EXPECT_EQ(refusal("CTRL-REQ-SIM--1:UMTS-AUTH:" + ok_tail), "CTRL-REQ-SIM has no network id");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-12345678901:UMTS-AUTH:" + ok_tail), "CTRL-REQ-SIM network id is too long");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-4294967296:UMTS-AUTH:" + ok_tail), "CTRL-REQ-SIM network id is out of range");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-2147483648:UMTS-AUTH:" + ok_tail), "CTRL-REQ-SIM network id is out of range");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1 UMTS-AUTH:" + ok_tail), "Expected ':' after the CTRL-REQ-SIM network id");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:UMTS-AUTS:" + ok_tail), "CTRL-REQ-SIM asks for neither UMTS-AUTH nor GSM-AUTH");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:umts-auth:" + ok_tail), "CTRL-REQ-SIM asks for neither UMTS-AUTH nor GSM-AUTH");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:UMTS-AUTH:" + kRand.substr(2) + ":" + kAutn),
            "UMTS-AUTH RAND has a character that is not a hex digit");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:UMTS-AUTH:" + kRand), "Expected ':' after UMTS-AUTH RAND");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:UMTS-AUTH:" + kRand + ":" + kAutn.substr(1)),
            "UMTS-AUTH AUTN is shorter than 32 hex digits");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:UMTS-AUTH:" + kRand + ":" + kAutn + "00"), "Unexpected data after UMTS-AUTH AUTN");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:UMTS-AUTH:" + kRand + ":" + kAutn + ":"), "Unexpected data after UMTS-AUTH AUTN");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:UMTS-AUTH:" + kRand + ":" + kAutn + " needed"),
            "Unexpected data after UMTS-AUTH AUTN");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:UMTS-AUTH:0x" + kRand.substr(2) + ":" + kAutn),
            "UMTS-AUTH RAND has a character that is not a hex digit");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:UMTS-AUTH:" + std::string(30, 'g') + "00:" + kAutn),
            "UMTS-AUTH RAND has a character that is not a hex digit");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:UMTS-AUTH: " + kRand.substr(1) + ":" + kAutn),
            "UMTS-AUTH RAND has a character that is not a hex digit");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:GSM-AUTH:" + kRand), "GSM-AUTH has fewer than two RANDs");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:GSM-AUTH:" + kRand + ":" + kRand + ":" + kRand + ":" + kRand),
            "GSM-AUTH has more than three RANDs");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:GSM-AUTH:" + kRand + ":"), "GSM-AUTH RAND is shorter than 32 hex digits");
  EXPECT_EQ(refusal("CTRL-REQ-SIM-1:GSM-AUTH:" + kRand + ";" + kRand2), "Unexpected data after GSM-AUTH RAND");
}

TEST(AMalformedMessage, IsRefusedBeforeItIsRead) {
  const std::string request = "CTRL-REQ-SIM-1:UMTS-AUTH:" + kRand + ":" + kAutn;
  EXPECT_EQ(refusal(request + std::string(kMaxEventSize, 'x')), "Control interface message is too long");
  EXPECT_EQ(refusal(std::string("CTRL-REQ-SIM-1:UMTS-AUTH:\0", 26) + kRand),
            "Control interface message contains a NUL or line break");
  EXPECT_EQ(refusal(request + "\n"), "Control interface message contains a NUL or line break");
  EXPECT_EQ(refusal("<>" + request), "Control interface event has a malformed level prefix");
  EXPECT_EQ(refusal("<3" + request), "Control interface event has a malformed level prefix");
  EXPECT_EQ(refusal("<1234>" + request), "Control interface event has a malformed level prefix");
  EXPECT_EQ(refusal("<"), "Control interface event has a malformed level prefix");
}

TEST(AMalformedRequest, NeverQuotesTheInput) {
  auto r = parse_event("CTRL-REQ-SIM-1:UMTS-AUTH:" + kRand + ":" + kAutn + "zz");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find(kRand), std::string::npos);
  EXPECT_EQ(r.error().message.find(kAutn), std::string::npos);
}

TEST(EveryPrefixOfARequest, IsRefusedOrIgnoredWithoutCrashing) {
  const std::string full = "<3>CTRL-REQ-SIM-12:GSM-AUTH:" + kRand + ":" + kRand2 + ":" + kRand3 + " needed for SSID x";
  for (std::size_t n = 0; n <= full.size(); ++n) {
    auto r = parse_event(std::string_view(full).substr(0, n));
    // Only the complete request, or one cut after a whole second or third RAND, is read.
    if (r && r->has_value()) {
      const auto& rands = std::get<GsmChallenge>((*r)->challenge).rands;
      EXPECT_GE(rands.size(), 2u);
    }
  }
}

TEST(AUmtsAnswer, ListsIkThenCkThenRes) {
  Bytes res = *from_hex("a54211d5e3ba50bf", "res");
  Bytes ck = *from_hex("b40ba9a3c58b2a05bbf0d987b21bf8cb", "ck");
  Bytes ik = *from_hex("f769bcd751044604127672711c6d3441", "ik");
  auto r = format_umts_auth(7, res, ck, ik);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(text(*r), "CTRL-RSP-SIM-7:UMTS-AUTH:f769bcd751044604127672711c6d3441:"
                      "b40ba9a3c58b2a05bbf0d987b21bf8cb:a54211d5e3ba50bf");
}

TEST(AUmtsAnswer, RefusesKeysOfTheWrongSize) {
  Bytes key(16, 1);
  EXPECT_FALSE(format_umts_auth(0, Bytes(3, 0), key, key));
  EXPECT_FALSE(format_umts_auth(0, Bytes(17, 0), key, key));
  EXPECT_TRUE(format_umts_auth(0, Bytes(4, 0), key, key));
  EXPECT_TRUE(format_umts_auth(0, Bytes(16, 0), key, key));
  EXPECT_FALSE(format_umts_auth(0, Bytes(8, 0), Bytes(15, 0), key));
  EXPECT_FALSE(format_umts_auth(0, Bytes(8, 0), key, Bytes(17, 0)));
}

TEST(ASyncFailureAnswer, CarriesAuts) {
  auto r = format_umts_auts(3, Bytes{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "CTRL-RSP-SIM-3:UMTS-AUTS:000102030405060708090a0b0c0d");
  EXPECT_FALSE(format_umts_auts(3, Bytes(13, 0)));
  EXPECT_FALSE(format_umts_auts(3, Bytes(15, 0)));
}

TEST(AFailureAnswer, NamesTheNetwork) {
  EXPECT_EQ(format_umts_fail(2147483647), "CTRL-RSP-SIM-2147483647:UMTS-FAIL");
  EXPECT_EQ(format_gsm_fail(0), "CTRL-RSP-SIM-0:GSM-FAIL");
}

TEST(AGsmAnswer, ListsKcThenSresForEachRand) {
  Bytes kc1(8, 0x11), sres1(4, 0x22), kc2(8, 0x33), sres2(4, 0x44);
  auto r = format_gsm_auth(5, {{sres1, kc1}, {sres2, kc2}}, 2);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(text(*r), "CTRL-RSP-SIM-5:GSM-AUTH:1111111111111111:22222222:3333333333333333:44444444");
  EXPECT_FALSE(format_gsm_auth(5, {{sres1, kc1}}, 2));
  EXPECT_FALSE(format_gsm_auth(5, {{kc1, sres1}, {sres2, kc2}}, 2));
}

TEST(ARequestAndItsAnswer, UseTheSameNetworkId) {
  auto r = parse_event("<3>CTRL-REQ-SIM-42:UMTS-AUTH:" + kRand + ":" + kAutn + " needed for SSID x");
  ASSERT_TRUE(r && r->has_value());
  EXPECT_EQ(format_umts_fail((*r)->network_id), "CTRL-RSP-SIM-42:UMTS-FAIL");
}

TEST(AnIdentityQuestion, IsReadUpToItsNetworkId) {
  auto r = parse_event("<3>CTRL-REQ-IDENTITY-4:Identity needed for SSID office");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->network_id, 4u);
  EXPECT_TRUE(std::holds_alternative<IdentityQuestion>((*r)->challenge));
  // eapol_test has no SSID.
  auto bare = parse_event("<3>CTRL-REQ-IDENTITY-0:Identity needed for SSID ");
  ASSERT_TRUE(bare && bare->has_value());
}

TEST(AnIdentityQuestion, IsRefusedWithANamedReasonWhenMalformed) {
  EXPECT_EQ(parse_event("<3>CTRL-REQ-IDENTITY-:Identity").error().message, "CTRL-REQ-IDENTITY has no network id");
  EXPECT_EQ(parse_event("<3>CTRL-REQ-IDENTITY-2147483648:x").error().message,
            "CTRL-REQ-IDENTITY network id is out of range");
  EXPECT_EQ(parse_event("<3>CTRL-REQ-IDENTITY-3 Identity").error().message,
            "Expected ':' after the CTRL-REQ-IDENTITY network id");
}

TEST(AnIdentityAnswer, NamesTheNetworkAndRefusesWhatWpaSupplicantWouldMisread) {
  EXPECT_EQ(format_identity(3, "0001010123456789@wlan.mnc001.mcc001.3gppnetwork.org").value(),
            "CTRL-RSP-IDENTITY-3:0001010123456789@wlan.mnc001.mcc001.3gppnetwork.org");
  for (std::string bad : {std::string(), std::string("a b"), std::string("a:b"), std::string("a\nb"),
                          std::string(254, 'a'), std::string("\xc3\xa9")}) {
    auto r = format_identity(3, bad);
    EXPECT_FALSE(r) << bad;
  }
  EXPECT_TRUE(format_identity(3, std::string(253, 'a')));
}
