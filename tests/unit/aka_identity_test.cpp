// The identities a subscriber gives WLAN access networks, from the profile's IMSI.
#include <gtest/gtest.h>

#include "aka/identity.hpp"

using namespace mcimd;
using namespace mcimd::aka;

TEST(TheNetworkAccessIdentifier, IsTheImsiAtTheHomeNetworksWlanRealm) {
  EXPECT_EQ(network_access_identifier("001010123456789", "00101", std::nullopt).value(),
            "001010123456789@wlan.mnc001.mcc001.3gppnetwork.org");
  EXPECT_EQ(network_access_identifier("310260123456789", "310260", std::nullopt).value(),
            "310260123456789@wlan.mnc260.mcc310.3gppnetwork.org");
  EXPECT_FALSE(network_access_identifier("310260123456789", "acme", std::nullopt));
}

TEST(ThePermanentIdentity, PrefixesTheImsiWithTheMethodAndNamesTheHomeRealm) {
  // TS 23.003 §19.3.2: a two-digit MNC is written with a leading zero.
  EXPECT_EQ(permanent_identity(EapMethod::Aka, "001010123456789", "00101", std::nullopt).value(),
            "0001010123456789@wlan.mnc001.mcc001.3gppnetwork.org");
  EXPECT_EQ(permanent_identity(EapMethod::AkaPrime, "001010123456789", "00101", std::nullopt).value(),
            "6001010123456789@wlan.mnc001.mcc001.3gppnetwork.org");
  EXPECT_EQ(permanent_identity(EapMethod::Sim, "234150999999999", "23415", std::nullopt).value(),
            "1234150999999999@wlan.mnc015.mcc234.3gppnetwork.org");
  // A three-digit MNC, from a six-digit operator id.
  EXPECT_EQ(permanent_identity(EapMethod::Aka, "310260123456789", "310260", std::nullopt).value(),
            "0310260123456789@wlan.mnc260.mcc310.3gppnetwork.org");
}

TEST(ThePermanentIdentity, TakesTheMncLengthWhenGivenOverTheOperatorId) {
  EXPECT_EQ(permanent_identity(EapMethod::Aka, "310260123456789", "00101", 3).value(),
            "0310260123456789@wlan.mnc260.mcc310.3gppnetwork.org");
  EXPECT_EQ(permanent_identity(EapMethod::Aka, "310260123456789", "310260", 2).value(),
            "0310260123456789@wlan.mnc026.mcc310.3gppnetwork.org");
}

TEST(ThePermanentIdentity, IsRefusedWhenTheMncLengthCannotBeTold) {
  for (const char* operator_id : {"acme-mobile", "23415", "0010", "0010101", ""}) {
    auto r = permanent_identity(EapMethod::Aka, "001010123456789", operator_id, std::nullopt);
    ASSERT_FALSE(r) << operator_id;
    EXPECT_EQ(r.error().code, Code::InvalidArgument);
    EXPECT_NE(r.error().message.find("--mnc-length"), std::string::npos) << r.error().message;
  }
}

TEST(ThePermanentIdentity, RefusesAMalformedImsiOrMncLength) {
  for (const char* imsi : {"", "00101", "0010101234567890", "00101012345678x", "00101 0123456789"}) {
    auto r = permanent_identity(EapMethod::Aka, imsi, "00101", 2);
    ASSERT_FALSE(r) << imsi;
    EXPECT_EQ(r.error().message, "The profile's IMSI is not 6 to 15 digits");
  }
  for (int length : {0, 1, 4}) {
    auto r = permanent_identity(EapMethod::Aka, "001010123456789", "00101", length);
    ASSERT_FALSE(r) << length;
    EXPECT_NE(r.error().message.find("MNC is 2 or 3 digits"), std::string::npos);
  }
}

TEST(ANetworksMethods, ChooseThePrefixByTheFirstMethodTheBridgeServes) {
  // As wpa_supplicant's GET_NETWORK <id> eap prints them.
  EXPECT_EQ(first_sim_method("AKA"), EapMethod::Aka);
  EXPECT_EQ(first_sim_method("AKA'"), EapMethod::AkaPrime);
  EXPECT_EQ(first_sim_method("AKA AKA'"), EapMethod::Aka);
  EXPECT_EQ(first_sim_method("AKA' AKA"), EapMethod::AkaPrime);
  EXPECT_EQ(first_sim_method("PEAP SIM"), EapMethod::Sim);
  EXPECT_EQ(first_sim_method("PEAP TTLS"), std::nullopt);
  EXPECT_EQ(first_sim_method("FAIL"), std::nullopt);  // the network has no eap value
  EXPECT_EQ(first_sim_method(""), std::nullopt);
  EXPECT_EQ(first_sim_method("AKA''"), std::nullopt);
}

