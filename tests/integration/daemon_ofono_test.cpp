// The oFono compatibility (dbus.ofono-compat) of a real mcimd on swtpm and a private bus, driven
// the way iwd's oFono plugin drives org.ofono: GetModems, the modem's Interfaces,
// SimAuthentication's NetworkAccessIdentity and applications, then UmtsAuthenticate and
// GsmAuthenticate on the USIM application, and ModemAdded / ModemRemoved as the profile comes
// and goes.
#include <gtest/gtest.h>
#include <systemd/sd-bus.h>

#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "dbus-api/bus_handles.hpp"
#include "dbus-api/ofono_compat.hpp"
#include "tests/support/bus_values.hpp"
#include "tests/support/mcimd_instance.hpp"

using namespace mcimd;
using namespace mcimd::test;
using api::BusError;
using api::SdBus;
using api::SdBusMessage;
using api::SdBusSlot;

namespace {

constexpr uid_t kNobody = 65534;  // no role at all
const char* kNai = "001010123456789@wlan.mnc001.mcc001.3gppnetwork.org";
// TS 35.208 set 1 RAND; SRES and Kc by the c2/c3 conversion of TS 33.102 §6.8.1.2.
const char* kGsmRand = "23553cbe9637a89d218ae64dae47bf35";

// sd-bus's answer for an object or method it does not have: UnknownObject, or UnknownMethod
// where the path is the parent of an object.
bool is_unknown(const std::string& error) {
  return error == "org.freedesktop.DBus.Error.UnknownObject" || error == "org.freedesktop.DBus.Error.UnknownMethod";
}

McimdOptions with_ofono_compat() {
  McimdOptions options;
  options.extra_config = "dbus:\n  ofono-compat: true\n";
  return options;
}

Bytes unhex(const std::string& text) {
  auto bytes = from_hex(text, "test value");
  if (!bytes) throw std::runtime_error(bytes.error().message);
  return *bytes;
}

// A property of oFono's a{sv} as text: strings as they are, booleans "true"/"false", string
// arrays joined with ",".
using Properties = std::map<std::string, std::string>;

Properties read_properties(sd_bus_message* m) {
  Properties out;
  if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0) throw std::runtime_error("not an a{sv}");
  while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
    const char* key = nullptr;
    const char* contents = nullptr;
    sd_bus_message_read(m, "s", &key);
    sd_bus_message_peek_type(m, nullptr, &contents);
    std::string type = contents ? contents : "";
    sd_bus_message_enter_container(m, 'v', contents);
    if (type == "s") {
      const char* s = nullptr;
      sd_bus_message_read(m, "s", &s);
      out[key] = s;
    } else if (type == "b") {
      int b = 0;
      sd_bus_message_read(m, "b", &b);
      out[key] = b ? "true" : "false";
    } else if (type == "as") {
      char** strv = nullptr;
      sd_bus_message_read_strv(m, &strv);
      std::string joined;
      for (char** s = strv; s && *s; ++s) {
        joined += (joined.empty() ? "" : ",") + std::string(*s);
        free(*s);
      }
      free(strv);
      out[key] = joined;
    } else {
      sd_bus_message_skip(m, contents);
      out[key] = "(" + type + ")";
    }
    sd_bus_message_exit_container(m);
    sd_bus_message_exit_container(m);
  }
  sd_bus_message_exit_container(m);
  return out;
}

// a{say} as hex strings.
std::map<std::string, std::string> read_byte_dict(sd_bus_message* m) {
  std::map<std::string, std::string> out;
  for (const auto& [key, bytes] : read_say(m)) out[key] = to_hex(bytes);
  return out;
}

// oFono's lists of objects with their properties: a(oa{sv}) (`entry` 'r') or a{oa{sv}} ('e').
std::map<std::string, Properties> read_object_list(sd_bus_message* m, char entry) {
  std::map<std::string, Properties> out;
  if (sd_bus_message_enter_container(m, 'a', entry == 'r' ? "(oa{sv})" : "{oa{sv}}") < 0)
    throw std::runtime_error("not a list of objects");
  while (sd_bus_message_enter_container(m, entry, "oa{sv}") > 0) {
    const char* path = nullptr;
    sd_bus_message_read(m, "o", &path);
    std::string key = path;
    out[key] = read_properties(m);
    sd_bus_message_exit_container(m);
  }
  sd_bus_message_exit_container(m);
  return out;
}

// A client on the instance's bus, as root (the admin role, which may read and authenticate).
class OfonoClient {
 public:
  explicit OfonoClient(McimdInstance& mcimd) {
    sd_bus* raw = nullptr;
    const std::string address = mcimd.bus_env().at("DBUS_SYSTEM_BUS_ADDRESS");
    if (sd_bus_new(&raw) < 0) throw std::runtime_error("sd_bus_new failed");
    bus_.reset(raw);
    if (sd_bus_set_address(raw, address.c_str()) < 0 || sd_bus_set_bus_client(raw, 1) < 0 || sd_bus_start(raw) < 0)
      throw std::runtime_error("cannot connect to " + address);
  }
  sd_bus* get() { return bus_.get(); }

  // The reply, or null with `error` naming the D-Bus error. `append` writes the arguments.
  template <class Append>
  SdBusMessage call(const char* destination, const char* path, const char* interface, const char* member,
                    Append&& append, std::string* error = nullptr) {
    sd_bus_message* raw = nullptr;
    if (sd_bus_message_new_method_call(bus_.get(), &raw, destination, path, interface, member) < 0)
      throw std::runtime_error("cannot make a call");
    SdBusMessage m(raw);
    append(m.get());
    BusError e;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call(bus_.get(), m.get(), 30'000'000, e.get(), &reply);
    if (error) *error = r < 0 && e.name() ? e.name() : "";
    EXPECT_TRUE(r >= 0 || error) << interface << "." << member << " on " << path << ": "
                                 << (e.message() ? e.message() : "");
    return SdBusMessage(reply);
  }
  SdBusMessage call(const char* path, const char* interface, const char* member, std::string* error = nullptr) {
    return call(api::kOfonoBusName, path, interface, member, [](sd_bus_message*) {}, error);
  }

  // GetModems as path → properties.
  std::map<std::string, Properties> modems() {
    auto reply = call("/", api::kOfonoManagerInterface, "GetModems");
    return reply ? read_object_list(reply.get(), 'r') : std::map<std::string, Properties>{};
  }

  std::map<std::string, std::string> umts_authenticate(const Challenge& c, std::string* error = nullptr) {
    const Bytes rand = unhex(c.rand), autn = unhex(c.autn);
    auto reply = call(
        api::kOfonoBusName, api::kOfonoApplicationPath, api::kOfonoUsimInterface, "UmtsAuthenticate",
        [&](sd_bus_message* m) {
          sd_bus_message_append_array(m, 'y', rand.data(), rand.size());
          sd_bus_message_append_array(m, 'y', autn.data(), autn.size());
        },
        error);
    return reply ? read_byte_dict(reply.get()) : std::map<std::string, std::string>{};
  }

 private:
  SdBus bus_;
};

class AnOfonoCompatibleMcimd : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(mcimd.start()) << mcimd.log(); }

  void install_demo_profile() {
    auto r = mcimd.install_profile(kDemoProfileYaml);
    ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  }

  McimdInstance mcimd{with_ofono_compat()};
};

}  // namespace

TEST_F(AnOfonoCompatibleMcimd, ListsTheModemOnlyWhileAProfileIsActive) {
  OfonoClient client(mcimd);
  EXPECT_TRUE(client.modems().empty()) << "no profile, no modem";
  install_demo_profile();  // the first profile becomes the active one
  auto modems = client.modems();
  ASSERT_EQ(modems.size(), 1u);
  const Properties& modem = modems.at(api::kOfonoModemPath);
  EXPECT_EQ(modem.at("Interfaces"), "org.ofono.SimManager,org.ofono.SimAuthentication");
  EXPECT_EQ(modem.at("Powered"), "true");
  EXPECT_EQ(modem.at("Online"), "true");
  EXPECT_EQ(modem.at("Name"), "mcimd");
  EXPECT_EQ(modem.at("Type"), "hardware");
  auto properties = client.call(api::kOfonoModemPath, api::kOfonoModemInterface, "GetProperties");
  ASSERT_TRUE(properties);
  EXPECT_EQ(read_properties(properties.get()), modem);

  ASSERT_EQ(mcimd.mcimctl({"disable", "0"}).exit_code, 0) << mcimd.log();
  EXPECT_TRUE(client.modems().empty()) << "a disabled profile is no modem";
  std::string error;
  client.call(api::kOfonoModemPath, api::kOfonoSimAuthenticationInterface, "GetProperties", &error);
  EXPECT_TRUE(is_unknown(error)) << error;
}

TEST_F(AnOfonoCompatibleMcimd, AnswersIwdsQuestionsWithTheActiveProfilesIdentity) {
  install_demo_profile();
  OfonoClient client(mcimd);
  ASSERT_EQ(client.modems().count(api::kOfonoModemPath), 1u);

  auto simauth = client.call(api::kOfonoModemPath, api::kOfonoSimAuthenticationInterface, "GetProperties");
  ASSERT_TRUE(simauth);
  EXPECT_EQ(read_properties(simauth.get()), (Properties{{"NetworkAccessIdentity", kNai}}));

  auto applications = client.call(api::kOfonoModemPath, api::kOfonoSimAuthenticationInterface, "GetApplications");
  ASSERT_TRUE(applications);
  auto apps = read_object_list(applications.get(), 'e');
  ASSERT_EQ(apps.size(), 1u);
  EXPECT_EQ(apps[api::kOfonoApplicationPath].at("Type"), "Umts");

  auto sim = client.call(api::kOfonoModemPath, api::kOfonoSimManagerInterface, "GetProperties");
  ASSERT_TRUE(sim);
  EXPECT_EQ(read_properties(sim.get()), (Properties{{"Present", "true"},
                                                    {"SubscriberIdentity", "001010123456789"},
                                                    {"MobileCountryCode", "001"},
                                                    {"MobileNetworkCode", "01"}}));
}

TEST_F(AnOfonoCompatibleMcimd, LeavesTheIdentityOutAndSaysWhyOnceWhenTheMncLengthIsUnknown) {
  // An operator id that is not MCC+MNC: nothing tells how long the MNC is.
  std::string yaml = kDemoProfileYaml;
  yaml.replace(yaml.find("operator: \"00101\""), std::string("operator: \"00101\"").size(), "operator: \"Example\"");
  ASSERT_EQ(mcimd.install_profile(yaml).exit_code, 0) << mcimd.log();
  OfonoClient client(mcimd);
  for (int i = 0; i < 2; ++i) {
    auto simauth = client.call(api::kOfonoModemPath, api::kOfonoSimAuthenticationInterface, "GetProperties");
    ASSERT_TRUE(simauth);
    EXPECT_TRUE(read_properties(simauth.get()).empty()) << "no identity: iwd leaves the SIM alone";
  }
  const std::string log = mcimd.log();
  const std::string hint = "set dbus.ofono-compat-mnc-length to 2 or 3";
  const auto first = log.find(hint);
  EXPECT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find(hint, first + 1), std::string::npos) << "warned once: " << log;
}

TEST_F(AnOfonoCompatibleMcimd, AuthenticatesOnTheUsimApplicationAsTheProfileDoes) {
  install_demo_profile();
  OfonoClient client(mcimd);
  auto c = make_challenge(mcimd, "000000000021");
  auto answer = client.umts_authenticate(c);
  EXPECT_EQ(answer, (std::map<std::string, std::string>{{"RES", c.xres}, {"CK", c.ck}, {"IK", c.ik}}));

  // The same challenge again is a replay: AUTS alone, as on the profile object.
  auto replay = client.umts_authenticate(c);
  EXPECT_EQ(replay.size(), 1u);
  EXPECT_EQ(replay.count("AUTS"), 1u);

  // The same argument checks, with the same error names.
  std::string error;
  Challenge short_rand = c;
  short_rand.rand = "0102";
  client.umts_authenticate(short_rand, &error);
  EXPECT_EQ(error, "org.mcimd.Tre1.Error.InvalidArgument");

  const Bytes rand = unhex(kGsmRand);
  auto gsm = client.call(api::kOfonoBusName, api::kOfonoApplicationPath, api::kOfonoUsimInterface, "GsmAuthenticate",
                         [&](sd_bus_message* m) {
                           sd_bus_message_open_container(m, 'a', "ay");
                           sd_bus_message_append_array(m, 'y', rand.data(), rand.size());
                           sd_bus_message_close_container(m);
                         });
  ASSERT_TRUE(gsm);
  ASSERT_GT(sd_bus_message_enter_container(gsm.get(), 'a', "a{say}"), 0);
  EXPECT_EQ(read_byte_dict(gsm.get()),
            (std::map<std::string, std::string>{{"SRES", "46f8416a"}, {"Kc", "eae4be823af9a08b"}}));

  auto properties = client.call(api::kOfonoApplicationPath, api::kOfonoUsimInterface, "GetProperties");
  ASSERT_TRUE(properties);
  EXPECT_EQ(read_properties(properties.get()).at("Type"), "Umts");
}

TEST_F(AnOfonoCompatibleMcimd, AnnouncesTheModemGoingAndComingWithTheProfile) {
  install_demo_profile();
  OfonoClient client(mcimd);
  struct Seen {
    std::vector<std::string> signals;  // "ModemAdded /mcimd_0" ...
    Properties added;
  } seen;
  sd_bus_slot* raw = nullptr;
  ASSERT_GE(sd_bus_match_signal(
                client.get(), &raw, api::kOfonoBusName, api::kOfonoManagerPath, api::kOfonoManagerInterface, nullptr,
                [](sd_bus_message* m, void* userdata, sd_bus_error*) -> int {
                  auto& seen = *static_cast<Seen*>(userdata);
                  const char* path = nullptr;
                  sd_bus_message_read(m, "o", &path);
                  seen.signals.push_back(std::string(sd_bus_message_get_member(m)) + " " + path);
                  if (std::string_view(sd_bus_message_get_member(m)) == "ModemAdded") seen.added = read_properties(m);
                  return 0;
                },
                &seen),
            0);
  SdBusSlot match(raw);
  auto wait_for = [&](std::size_t count) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seen.signals.size() < count && std::chrono::steady_clock::now() < until) {
      if (sd_bus_process(client.get(), nullptr) > 0) continue;
      sd_bus_wait(client.get(), 100'000);
    }
  };

  ASSERT_EQ(mcimd.mcimctl({"disable", "0"}).exit_code, 0) << mcimd.log();
  wait_for(1);
  ASSERT_EQ(mcimd.mcimctl({"enable", "0"}).exit_code, 0) << mcimd.log();
  wait_for(2);
  EXPECT_EQ(seen.signals, (std::vector<std::string>{"ModemRemoved /mcimd_0", "ModemAdded /mcimd_0"}));
  EXPECT_EQ(seen.added.at("Interfaces"), "org.ofono.SimManager,org.ofono.SimAuthentication");
}

TEST_F(AnOfonoCompatibleMcimd, RefusesACallerWithoutARoleAsItsOwnObjectsDo) {
  install_demo_profile();
  auto c = make_challenge(mcimd, "000000000021");
  auto list = mcimd.busctl({"call", "org.ofono", "/", "org.ofono.Manager", "GetModems"}, kNobody);
  EXPECT_NE(list.exit_code, 0) << list.out;
  EXPECT_NE(list.err.find("may not read mcimd state"), std::string::npos) << list.err;
  std::vector<std::string> args = {"call", "org.ofono", api::kOfonoApplicationPath, api::kOfonoUsimInterface,
                                   "UmtsAuthenticate", "ayay"};
  for (const Bytes& bytes : {unhex(c.rand), unhex(c.autn)}) {
    args.push_back(std::to_string(bytes.size()));
    for (uint8_t b : bytes) args.push_back(std::to_string(b));
  }
  auto auth = mcimd.busctl(args, kNobody);
  EXPECT_NE(auth.exit_code, 0) << auth.out;
  EXPECT_NE(auth.err.find("may not authenticate with a profile"), std::string::npos) << auth.err;
  // The challenge is still fresh: the refused call never reached the TPM.
  OfonoClient client(mcimd);
  EXPECT_EQ(client.umts_authenticate(c).count("RES"), 1u);
}

TEST(AnMcimdWithoutOfonoCompat, NeitherOwnsOrgOfonoNorServesItsObjects) {
  McimdInstance mcimd;
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  ASSERT_EQ(mcimd.install_profile(kDemoProfileYaml).exit_code, 0) << mcimd.log();
  OfonoClient client(mcimd);
  std::string error;
  client.call("/", api::kOfonoManagerInterface, "GetModems", &error);
  EXPECT_EQ(error, "org.freedesktop.DBus.Error.ServiceUnknown");
  for (const char* path : {"/", api::kOfonoModemPath, api::kOfonoApplicationPath}) {
    client.call("org.mcimd.Tre1", path, "org.ofono.Manager", "GetModems", [](sd_bus_message*) {}, &error);
    EXPECT_TRUE(is_unknown(error)) << path << ": " << error;
  }
}

TEST(AnMcimdWithOfonoCompat, RefusesToStartWhenAnotherProgramOwnsOrgOfono) {
  McimdInstance mcimd(with_ofono_compat());
  OfonoClient other(mcimd);  // plays a running oFono
  ASSERT_GE(sd_bus_request_name(other.get(), api::kOfonoBusName, 0), 0);
  EXPECT_FALSE(mcimd.start());
  EXPECT_EQ(mcimd.wait_exit(std::chrono::seconds(10)), 1);
  const std::string log = mcimd.log();
  EXPECT_NE(log.find("Failed to acquire the bus name org.ofono: another connection owns it"), std::string::npos)
      << log;
  EXPECT_NE(log.find("dbus.ofono-compat: false"), std::string::npos) << log;
}
