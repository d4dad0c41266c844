#include <gtest/gtest.h>

#include "daemon/ofono_subscriber.hpp"

using namespace mcimd;
using mcimd::daemon::ofono_subscriber;

namespace {

api::ProfileInfo profile(std::string imsi, std::string operator_id) {
  api::ProfileInfo info;
  info.id = "p0";
  info.iccid = "8949001234567890123";
  info.imsi = std::move(imsi);
  info.operator_id = std::move(operator_id);
  return info;
}

}  // namespace

TEST(AnOfonoSubscriber, TakesTheMncLengthFromAnOperatorIdThatIsTheImsisMccAndMnc) {
  auto two = ofono_subscriber(profile("001010123456789", "00101"), std::nullopt);
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_EQ(two->mcc, "001");
  EXPECT_EQ(two->mnc, "01");
  EXPECT_EQ(two->nai, "001010123456789@wlan.mnc001.mcc001.3gppnetwork.org");
  auto three = ofono_subscriber(profile("310260123456789", "310260"), std::nullopt);
  ASSERT_TRUE(three) << three.error().message;
  EXPECT_EQ(three->mnc, "260");
  EXPECT_EQ(three->nai, "310260123456789@wlan.mnc260.mcc310.3gppnetwork.org");
}

TEST(AnOfonoSubscriber, PrefersTheConfiguredMncLength) {
  auto s = ofono_subscriber(profile("001010123456789", "00101"), 3);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->mnc, "010");
  EXPECT_EQ(s->nai, "001010123456789@wlan.mnc010.mcc001.3gppnetwork.org");
  auto named = ofono_subscriber(profile("310260123456789", "Example Operator"), 3);
  ASSERT_TRUE(named) << named.error().message;
  EXPECT_EQ(named->mnc, "260");
}

TEST(AnOfonoSubscriber, NamesTheOptionWhenTheMncLengthIsUnknown) {
  auto s = ofono_subscriber(profile("310260123456789", "Example Operator"), std::nullopt);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("dbus.ofono-compat-mnc-length"), std::string::npos) << s.error().message;
  auto bad_imsi = ofono_subscriber(profile("31026x", "Example Operator"), std::nullopt);
  ASSERT_FALSE(bad_imsi);
  EXPECT_EQ(bad_imsi.error().message.find("dbus.ofono-compat-mnc-length"), std::string::npos)
      << "an IMSI that is wrong whatever the length is not blamed on the option";
}
