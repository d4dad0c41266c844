#include "agent/config.hpp"

#include <curl/curl.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "common/c_handle.hpp"
#include "common/file.hpp"

namespace mcimd::agent {

namespace {

using CurlUrl = CHandle<CURLU, curl_url_cleanup>;

// One configuration error, "agent.yaml:7: retries.attempts: 0 is not between 1 and 100".
class Problem {
 public:
  explicit Problem(std::string_view source) : source_(source) {}
  tl::unexpected<Error> at(const YAML::Node& node, std::string_view key, std::string_view why) const {
    std::string where(source_);
    if (node.Mark().line >= 0) where += ":" + std::to_string(node.Mark().line + 1);
    return fail(Code::ConfigError, where + ": " + std::string(key) + ": " + std::string(why));
  }

 private:
  std::string_view source_;
};

Result<std::string> scalar(const Problem& p, const YAML::Node& n, std::string_view key) {
  if (!n.IsScalar()) return p.at(n, key, "expected a single value");
  return n.Scalar();
}

Result<std::filesystem::path> absolute_path(const Problem& p, const YAML::Node& n, std::string_view key) {
  auto text = MCIMD_TRY(scalar(p, n, key));
  if (text.empty() || text.front() != '/') return p.at(n, key, "expected an absolute path, got '" + text + "'");
  return std::filesystem::path(text);
}

Result<Millis> duration(const Problem& p, const YAML::Node& n, std::string_view key, Millis min, Millis max) {
  auto text = MCIMD_TRY(scalar(p, n, key));
  auto d = parse_duration(text);
  if (!d) return p.at(n, key, "'" + text + "' is not a duration such as 500ms, 30s, 5min or 2h");
  if (*d < min || *d > max)
    return p.at(n, key, "'" + text + "' is outside " + std::to_string(min.count()) + " ms to " +
                            std::to_string(max.count() / 1000) + " s");
  return *d;
}

using KeyHandler = std::function<Status(const YAML::Node&)>;

// Hands each key of a mapping to its handler. yaml-cpp keeps both copies of a repeated key, and
// which one a reader expects to win is anybody's guess: a repeat is an error.
Status each_key(const Problem& p, const YAML::Node& map, const std::string& prefix,
                const std::map<std::string, KeyHandler>& handlers) {
  if (!map.IsMap()) return p.at(map, prefix.empty() ? "(top level)" : prefix, "expected keys and values");
  std::set<std::string> given;
  for (const auto& entry : map) {
    const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "?";
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    if (!given.insert(name).second) return p.at(entry.first, key, "given more than once");
    auto handler = handlers.find(name);
    if (handler == handlers.end()) {
      std::string known;
      for (const auto& h : handlers) known += (known.empty() ? "" : ", ") + h.first;
      return p.at(entry.first, key, "unknown key; expected one of " + known);
    }
    MCIMD_CHECK(handler->second(entry.second));
  }
  return {};
}

Status parse_retries(const Problem& p, const YAML::Node& node, RetryPolicy& r) {
  const std::map<std::string, KeyHandler> keys = {
      {"attempts",
       [&](const YAML::Node& n) -> Status {
         auto text = MCIMD_TRY(scalar(p, n, "retries.attempts"));
         unsigned v = 0;
         auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
         if (ec != std::errc() || end != text.data() + text.size() || v < 1 || v > 100)
           return p.at(n, "retries.attempts", "'" + text + "' is not a number from 1 to 100");
         r.attempts = v;
         return {};
       }},
      {"initial-backoff",
       [&](const YAML::Node& n) -> Status {
         r.initial_backoff = MCIMD_TRY(duration(p, n, "retries.initial-backoff", Millis(1), Millis(3'600'000)));
         return {};
       }},
      {"max-backoff",
       [&](const YAML::Node& n) -> Status {
         r.max_backoff = MCIMD_TRY(duration(p, n, "retries.max-backoff", Millis(1), Millis(3'600'000)));
         return {};
       }},
      {"give-up-after",
       [&](const YAML::Node& n) -> Status {
         r.give_up_after = MCIMD_TRY(duration(p, n, "retries.give-up-after", Millis(0), Millis(86'400'000)));
         return {};
       }},
  };
  MCIMD_CHECK(each_key(p, node, "retries", keys));
  if (r.max_backoff < r.initial_backoff)
    return p.at(node, "retries.max-backoff", "is shorter than retries.initial-backoff");
  return {};
}

Status parse_document(const Problem& p, const YAML::Node& root, AgentConfig& c) {
  const std::map<std::string, KeyHandler> keys = {
      {"operator-url",
       [&](const YAML::Node& n) -> Status {
         auto text = MCIMD_TRY(scalar(p, n, "operator-url"));
         auto url = normalise_operator_url(text);
         if (!url) return p.at(n, "operator-url", url.error().message);
         c.operator_url = *url;
         return {};
       }},
      {"ca-bundle",
       [&](const YAML::Node& n) -> Status {
         auto text = MCIMD_TRY(scalar(p, n, "ca-bundle"));
         if (text == "system") {
           c.system_ca = true;
           return {};
         }
         c.ca_bundle = MCIMD_TRY(absolute_path(p, n, "ca-bundle"));
         return {};
       }},
      {"client-certificate",
       [&](const YAML::Node& n) -> Status {
         c.client_certificate = MCIMD_TRY(absolute_path(p, n, "client-certificate"));
         return {};
       }},
      {"client-key",
       [&](const YAML::Node& n) -> Status {
         c.client_key = MCIMD_TRY(absolute_path(p, n, "client-key"));
         return {};
       }},
      {"subscription",
       [&](const YAML::Node& n) -> Status {
         auto text = MCIMD_TRY(scalar(p, n, "subscription"));
         if (!is_protocol_id(text))
           return p.at(n, "subscription", "'" + text + "' is not 1 to 64 of A-Z a-z 0-9 . _ -");
         c.subscription = text;
         return {};
       }},
      {"state-dir",
       [&](const YAML::Node& n) -> Status {
         c.state_dir = MCIMD_TRY(absolute_path(p, n, "state-dir"));
         return {};
       }},
      {"ek-type",
       [&](const YAML::Node& n) -> Status {
         auto text = MCIMD_TRY(scalar(p, n, "ek-type"));
         if (text != "ecc" && text != "rsa") return p.at(n, "ek-type", "'" + text + "' is neither ecc nor rsa");
         c.ek_type = text;
         return {};
       }},
      {"connect-timeout",
       [&](const YAML::Node& n) -> Status {
         c.connect_timeout = MCIMD_TRY(duration(p, n, "connect-timeout", Millis(1), Millis(600'000)));
         return {};
       }},
      {"timeout",
       [&](const YAML::Node& n) -> Status {
         c.timeout = MCIMD_TRY(duration(p, n, "timeout", Millis(1), Millis(3'600'000)));
         return {};
       }},
      {"retries", [&](const YAML::Node& n) -> Status { return parse_retries(p, n, c.retries); }},
      {"provision-at-boot",
       [&](const YAML::Node& n) -> Status {
         auto text = MCIMD_TRY(scalar(p, n, "provision-at-boot"));
         // Only the two words: YAML 1.1's yes/no/on/off surprise too many readers.
         if (text != "true" && text != "false")
           return p.at(n, "provision-at-boot", "'" + text + "' is neither true nor false");
         c.provision_at_boot = text == "true";
         return {};
       }},
  };
  return each_key(p, root, "", keys);
}

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  static const std::map<std::string_view, uint64_t> scale = {
      {"", 1000}, {"ms", 1}, {"s", 1000}, {"min", 60'000}, {"h", 3'600'000}};
  auto it = scale.find(unit);
  if (it == scale.end()) return std::nullopt;
  // Nobody configures years: refusing large values keeps the multiplication exact.
  if (value > (uint64_t{1} << 40) / it->second) return std::nullopt;
  return Millis(static_cast<int64_t>(value * it->second));
}

bool is_protocol_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
           ch == '_' || ch == '-';
  });
}

Result<std::string> normalise_operator_url(std::string_view url) {
  const std::string text(url);
  if (text.empty() || text.size() > 2048 ||
      std::any_of(text.begin(), text.end(), [](unsigned char ch) { return ch <= 0x20 || ch >= 0x7f; }))
    return fail(Code::ConfigError, "'" + text + "' is not a URL (empty, too long, or with spaces or control characters)");
  CurlUrl handle(curl_url());
  if (!handle) return fail(Code::Internal, "curl_url failed");
  if (CURLUcode rc = curl_url_set(handle.get(), CURLUPART_URL, text.c_str(), 0); rc != CURLUE_OK)
    return fail(Code::ConfigError, "'" + text + "' is not a URL: " + curl_url_strerror(rc));
  auto part = [&](CURLUPart which) -> std::optional<std::string> {
    char* value = nullptr;
    if (curl_url_get(handle.get(), which, &value, 0) != CURLUE_OK || !value) return std::nullopt;
    std::string out(value);
    curl_free(value);
    return out;
  };
  if (part(CURLUPART_SCHEME) != "https")
    return fail(Code::ConfigError, "'" + text + "' is not an https:// URL: the operator is only reached over TLS");
  if (!part(CURLUPART_HOST) || part(CURLUPART_HOST)->empty())
    return fail(Code::ConfigError, "'" + text + "' names no host");
  if (part(CURLUPART_USER) || part(CURLUPART_PASSWORD))
    return fail(Code::ConfigError, "'" + text + "' carries user information; the agent authenticates by certificate");
  if (part(CURLUPART_QUERY) || part(CURLUPART_FRAGMENT))
    return fail(Code::ConfigError, "'" + text + "' has a query or fragment; give the server's base URL");
  std::string normalised = text;
  while (normalised.ends_with('/')) normalised.pop_back();
  return normalised;
}

Result<AgentConfig> parse_agent_config(std::string_view yaml, std::string_view source) {
  Problem p(source);
  AgentConfig config;
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (root.IsNull()) return config;
    MCIMD_CHECK(parse_document(p, root, config));
  } catch (const YAML::Exception& e) {
    return fail(Code::ConfigError, std::string(source) + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return config;
}

Result<AgentConfig> load_agent_config(const std::filesystem::path& path) {
  auto text = read_text_file(path, 64 * 1024);
  if (!text) return fail(Code::ConfigError, "Cannot read " + path.string() + ": " + text.error().message);
  return parse_agent_config(*text, path.string());
}

Status check_runnable(const AgentConfig& c) {
  if (c.operator_url.empty())
    return fail(Code::ConfigError, "no operator: set operator-url in the configuration or give --operator");
  if (!c.ca_bundle && !c.system_ca)
    return fail(Code::ConfigError,
                "ca-bundle is required: the operator's CA certificates (PEM), or 'system' for the system store");
  if (!c.client_certificate || !c.client_key)
    return fail(Code::ConfigError, "client-certificate and client-key are required: the operator authenticates "
                                   "the gateway by its TLS client certificate");
  return {};
}

}  // namespace mcimd::agent
