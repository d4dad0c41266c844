#pragma once
// The provisioning agent's configuration (YAML, /etc/mcimd/agent.yaml). Every key is known: an
// unknown key, a key given twice or a bad value is a ConfigError naming the key and its line,
// so a typo never falls back to a default silently.
//
//   operator-url: https://operator.example:8443   # the operator's provisioning server
//   ca-bundle: /etc/mcimd/agent/operator-ca.pem   # anchors for its certificate ("system": the system store)
//   client-certificate: /etc/mcimd/agent/client.pem
//   client-key: /etc/mcimd/agent/client.key       # mode 0600, owned by the agent's user
//   subscription: plan-7                          # optional: an existing subscription to join
//   state-dir: /var/lib/mcimd-agent
//   ek-type: ecc                                  # the endorsement key enrolled: ecc | rsa
//   connect-timeout: 10s
//   timeout: 60s                                  # one exchange, connection included
//   retries: {attempts: 6, initial-backoff: 2s, max-backoff: 60s, give-up-after: 10min}
//   provision-at-boot: false
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "agent/retry.hpp"
#include "common/error.hpp"

namespace mcimd::agent {

inline constexpr const char* kDefaultConfigPath = "/etc/mcimd/agent.yaml";
inline constexpr const char* kDefaultStateDir = "/var/lib/mcimd-agent";

struct AgentConfig {
  std::string operator_url;  // normalised: no trailing '/'; may come from the command line instead
  bool system_ca = false;    // "ca-bundle: system"
  std::optional<std::filesystem::path> ca_bundle;
  std::optional<std::filesystem::path> client_certificate;
  std::optional<std::filesystem::path> client_key;
  std::optional<std::string> subscription;
  std::filesystem::path state_dir = kDefaultStateDir;
  std::string ek_type = "ecc";
  Millis connect_timeout{10'000};
  Millis timeout{60'000};
  RetryPolicy retries;
  bool provision_at_boot = false;
};

// Parses YAML text; `source` names the file in messages. An empty document is the defaults.
[[nodiscard]] Result<AgentConfig> parse_agent_config(std::string_view yaml, std::string_view source);
// Reads and parses a file (ConfigError when it cannot be read).
[[nodiscard]] Result<AgentConfig> load_agent_config(const std::filesystem::path& path);

// Checks that a configuration, command-line overrides applied, can run: an operator URL, a CA
// bundle (or "system"), a client certificate and its key. ConfigError naming what is missing.
[[nodiscard]] Status check_runnable(const AgentConfig& config);

// An https:// URL with a host, no user information, query or fragment; returned without a
// trailing '/'. ConfigError otherwise (the operator's endpoints are appended to it).
[[nodiscard]] Result<std::string> normalise_operator_url(std::string_view url);
// [A-Za-z0-9._-]{1,64}: the protocol's subscription and package ids.
bool is_protocol_id(std::string_view id);
// "250ms", "30s", "5min", "2h"; a bare number is seconds. nullopt for anything else.
std::optional<Millis> parse_duration(std::string_view text);

}  // namespace mcimd::agent
