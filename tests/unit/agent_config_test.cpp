// The agent's YAML configuration: every key read, every mistake a ConfigError naming the key and
// its line, nothing falling back to a default silently.
#include <gtest/gtest.h>

#include "agent/config.hpp"

using namespace mcimd;
using namespace mcimd::agent;

namespace {

constexpr const char* kFull = R"(operator-url: https://operator.example:8443/
ca-bundle: /etc/mcimd/agent/operator-ca.pem
client-certificate: /etc/mcimd/agent/client.pem
client-key: /etc/mcimd/agent/client.key
subscription: plan-7
state-dir: /var/lib/mcimd-agent
ek-type: rsa
connect-timeout: 5s
timeout: 2min
retries: {attempts: 4, initial-backoff: 500ms, max-backoff: 30s, give-up-after: 1h}
provision-at-boot: true
)";

// The error of a configuration expected to be refused.
Error refusal(std::string_view yaml) {
  auto c = parse_agent_config(yaml, "agent.yaml");
  EXPECT_FALSE(c) << yaml;
  return c ? Error{} : c.error();
}

}  // namespace

TEST(AnAgentConfig, ReadsEveryKey) {
  auto c = parse_agent_config(kFull, "agent.yaml");
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_EQ(c->operator_url, "https://operator.example:8443");  // trailing '/' dropped
  EXPECT_EQ(c->ca_bundle, "/etc/mcimd/agent/operator-ca.pem");
  EXPECT_FALSE(c->system_ca);
  EXPECT_EQ(c->client_certificate, "/etc/mcimd/agent/client.pem");
  EXPECT_EQ(c->client_key, "/etc/mcimd/agent/client.key");
  EXPECT_EQ(c->subscription, "plan-7");
  EXPECT_EQ(c->state_dir, "/var/lib/mcimd-agent");
  EXPECT_EQ(c->ek_type, "rsa");
  EXPECT_EQ(c->connect_timeout, Millis(5'000));
  EXPECT_EQ(c->timeout, Millis(120'000));
  EXPECT_EQ(c->retries.attempts, 4u);
  EXPECT_EQ(c->retries.initial_backoff, Millis(500));
  EXPECT_EQ(c->retries.max_backoff, Millis(30'000));
  EXPECT_EQ(c->retries.give_up_after, Millis(3'600'000));
  EXPECT_TRUE(c->provision_at_boot);
  EXPECT_TRUE(check_runnable(*c));
}

TEST(AnAgentConfig, IsTheDefaultsWhenEmpty) {
  auto c = parse_agent_config("", "agent.yaml");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->state_dir, kDefaultStateDir);
  EXPECT_EQ(c->retries.attempts, RetryPolicy{}.attempts);
  EXPECT_FALSE(c->provision_at_boot);
  // ... which cannot run: no operator, no anchors, no client certificate.
  auto runnable = check_runnable(*c);
  ASSERT_FALSE(runnable);
  EXPECT_EQ(runnable.error().code, Code::ConfigError);
  EXPECT_NE(runnable.error().message.find("operator-url"), std::string::npos);
}

TEST(AnAgentConfig, TakesTheSystemStoreOnlyByName) {
  auto c = parse_agent_config("ca-bundle: system\n", "agent.yaml");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->system_ca);
  EXPECT_FALSE(c->ca_bundle);
}

TEST(AnAgentConfig, NamesTheKeyAndLineOfEachMistake) {
  struct Case {
    const char* yaml;
    const char* names;  // in the message
  };
  const Case cases[] = {
      {"operator-url: http://operator.example\n", "agent.yaml:1: operator-url: "},
      {"operator-url: https://user:pw@operator.example\n", "operator-url"},
      {"operator-url: https://operator.example/?x=1\n", "operator-url"},
      {"\nca-bundle: relative/ca.pem\n", "agent.yaml:2: ca-bundle: expected an absolute path"},
      {"client-key: [a, b]\n", "client-key: expected a single value"},
      {"subscription: 'no spaces'\n", "subscription"},
      {"ek-type: dsa\n", "ek-type: 'dsa' is neither ecc nor rsa"},
      {"timeout: soon\n", "timeout: 'soon' is not a duration"},
      {"connect-timeout: 0s\n", "connect-timeout: '0s' is outside"},
      {"retries: {attempts: 0}\n", "retries.attempts: '0' is not a number from 1 to 100"},
      {"retries: {attempts: 3, tries: 4}\n", "retries.tries: unknown key"},
      {"retries: {initial-backoff: 10s, max-backoff: 1s}\n", "retries.max-backoff: is shorter"},
      {"provision-at-boot: yes\n", "provision-at-boot: 'yes' is neither true nor false"},
      {"operator_url: https://operator.example\n", "operator_url: unknown key; expected one of"},
      {"timeout: 5s\ntimeout: 6s\n", "agent.yaml:2: timeout: given more than once"},
      {"- a\n- b\n", "(top level): expected keys and values"},
      {"timeout: [5s\n", "agent.yaml:"},
  };
  for (const auto& c : cases) {
    Error e = refusal(c.yaml);
    EXPECT_EQ(e.code, Code::ConfigError) << c.yaml;
    EXPECT_NE(e.message.find(c.names), std::string::npos) << c.yaml << " → " << e.message;
  }
}

TEST(AnAgentConfig, IsRunnableOnlyWithAnchorsAndAClientCertificate) {
  auto no_ca = parse_agent_config("operator-url: https://o.example\nclient-certificate: /c.pem\nclient-key: /c.key\n",
                                  "agent.yaml");
  ASSERT_TRUE(no_ca);
  auto r = check_runnable(*no_ca);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("ca-bundle"), std::string::npos);
  auto no_key = parse_agent_config("operator-url: https://o.example\nca-bundle: system\nclient-certificate: /c.pem\n",
                                   "agent.yaml");
  ASSERT_TRUE(no_key);
  r = check_runnable(*no_key);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("client-key"), std::string::npos);
}

TEST(AnAgentConfig, ReportsAnUnreadableFileAsAConfigError) {
  auto c = load_agent_config("/nonexistent/agent.yaml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Code::ConfigError);
  EXPECT_NE(c.error().message.find("/nonexistent/agent.yaml"), std::string::npos);
}

TEST(ADuration, ReadsItsUnits) {
  EXPECT_EQ(parse_duration("250ms"), Millis(250));
  EXPECT_EQ(parse_duration("30s"), Millis(30'000));
  EXPECT_EQ(parse_duration("30"), Millis(30'000));
  EXPECT_EQ(parse_duration("5min"), Millis(300'000));
  EXPECT_EQ(parse_duration("2h"), Millis(7'200'000));
  for (const char* bad : {"", "s", "-1s", "1.5s", "1d", "1 s", "99999999999999h"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}
