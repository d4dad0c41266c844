#include "daemon/config.hpp"

#include <grp.h>
#include <pwd.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <functional>
#include <map>
#include <set>

#include "common/file.hpp"

namespace mcimd::daemon {

namespace {

struct Ctx {
  std::string_view source;
};

tl::unexpected<Error> bad(const Ctx& c, const YAML::Node& node, std::string_view key, std::string_view why) {
  std::string msg(c.source);
  if (node.Mark().line >= 0) msg += ":" + std::to_string(node.Mark().line + 1);
  msg += ": ";
  msg += key;
  msg += ": ";
  msg += why;
  return fail(Code::ConfigError, std::move(msg));
}

Result<std::string> as_string(const Ctx& c, const YAML::Node& n, std::string_view key) {
  if (!n.IsScalar()) return bad(c, n, key, "expected a string");
  return n.Scalar();
}

Result<uint64_t> as_uint(const Ctx& c, const YAML::Node& n, std::string_view key, uint64_t max) {
  if (!n.IsScalar()) return bad(c, n, key, "expected a number");
  std::string_view s = n.Scalar();
  int base = 10;
  if (s.starts_with("0x") || s.starts_with("0X")) {
    s.remove_prefix(2);
    base = 16;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size())
    return bad(c, n, key, "'" + n.Scalar() + "' is not a non-negative number");
  if (v > max) return bad(c, n, key, std::to_string(v) + " is larger than " + std::to_string(max));
  return v;
}

Result<bool> as_bool(const Ctx& c, const YAML::Node& n, std::string_view key) {
  if (!n.IsScalar()) return bad(c, n, key, "expected true or false");
  if (n.Scalar() == "true") return true;
  if (n.Scalar() == "false") return false;
  return bad(c, n, key, "'" + n.Scalar() + "' is not true or false");
}

template <class Id>
Result<std::vector<Id>> as_ids(const Ctx& c, const YAML::Node& n, std::string_view key, bool groups) {
  std::vector<Id> out;
  if (n.IsNull()) return out;
  if (!n.IsSequence()) return bad(c, n, key, "expected a list of names or numbers");
  for (const auto& item : n) {
    auto name = MCIMD_TRY(as_string(c, item, key));
    if (!name.empty() && std::all_of(name.begin(), name.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      out.push_back(static_cast<Id>(MCIMD_TRY(as_uint(c, item, key, 0xfffffffe))));
      continue;
    }
    if (groups) {
      struct group* g = getgrnam(name.c_str());
      if (!g) return bad(c, item, key, "no such group '" + name + "'");
      out.push_back(static_cast<Id>(g->gr_gid));
    } else {
      struct passwd* p = getpwnam(name.c_str());
      if (!p) return bad(c, item, key, "no such user '" + name + "'");
      out.push_back(static_cast<Id>(p->pw_uid));
    }
  }
  return out;
}

using Handler = std::function<Status(const YAML::Node&)>;

// Walks a mapping, dispatching each key to its handler; unknown keys are errors.
Status walk(const Ctx& c, const YAML::Node& map, std::string_view prefix, const std::map<std::string, Handler>& handlers) {
  if (!map.IsMap()) return bad(c, map, prefix.empty() ? "(top level)" : prefix, "expected a mapping of keys");
  std::set<std::string> seen;
  for (const auto& kv : map) {
    std::string key = kv.first.Scalar();
    std::string full = prefix.empty() ? key : std::string(prefix) + "." + key;
    // yaml-cpp keeps both of a repeated key; which one would win is not obvious to a reader.
    if (!seen.insert(key).second) return bad(c, kv.first, full, "given twice");
    auto it = handlers.find(key);
    if (it == handlers.end()) {
      std::string known;
      for (auto& [k, _] : handlers) known += (known.empty() ? "" : ", ") + k;
      return bad(c, kv.first, full, "unknown key (known: " + known + ")");
    }
    MCIMD_CHECK(it->second(kv.second));
  }
  return {};
}

// provisioning.operators: a list of {id, anchors}; ids unique.
Status parse_operators(const Ctx& c, const YAML::Node& n, std::vector<OperatorConfig>& out) {
  if (!n.IsSequence()) return bad(c, n, "provisioning.operators", "expected a list of {id, anchors}");
  for (const auto& item : n) {
    OperatorConfig op;
    MCIMD_CHECK(walk(c, item, "provisioning.operators[]",
                     {
                         {"id",
                          [&](const YAML::Node& v) -> Status {
                            op.id = MCIMD_TRY(as_string(c, v, "provisioning.operators[].id"));
                            bool printable = std::all_of(op.id.begin(), op.id.end(), [](char ch) { return ch >= 0x20 && ch <= 0x7e; });
                            if (op.id.empty() || op.id.size() > 64 || !printable)
                              return bad(c, v, "provisioning.operators[].id", "must be 1-64 printable ASCII characters");
                            return {};
                          }},
                         {"anchors",
                          [&](const YAML::Node& v) -> Status {
                            auto text = MCIMD_TRY(as_string(c, v, "provisioning.operators[].anchors"));
                            if (text.empty()) return bad(c, v, "provisioning.operators[].anchors", "expected a PEM file");
                            op.anchors = text;
                            return {};
                          }},
                     }));
    if (op.id.empty() || op.anchors.empty())
      return bad(c, item, "provisioning.operators[]", "needs both id and anchors");
    for (const auto& other : out)
      if (other.id == op.id) return bad(c, item, "provisioning.operators[].id", "'" + op.id + "' given twice");
    out.push_back(std::move(op));
  }
  return {};
}

Result<log::Level> parse_level(const Ctx& c, const YAML::Node& n) {
  static const std::map<std::string, log::Level> levels = {{"error", log::Level::Error},
                                                           {"warning", log::Level::Warning},
                                                           {"notice", log::Level::Notice},
                                                           {"info", log::Level::Info},
                                                           {"debug", log::Level::Debug}};
  auto s = MCIMD_TRY(as_string(c, n, "log-level"));
  auto it = levels.find(s);
  if (it == levels.end()) return bad(c, n, "log-level", "'" + s + "' is not one of error, warning, notice, info, debug");
  return it->second;
}

Status check_pcrs(const Ctx& c, const YAML::Node& n, const std::string& text) {
  // bank:list, e.g. sha256:7,14 — the TPM layer re-parses; here we catch typos early.
  auto colon = text.find(':');
  static const std::set<std::string> banks = {"sha1", "sha256", "sha384", "sha512"};
  if (colon == std::string::npos || !banks.count(text.substr(0, colon)))
    return bad(c, n, "tpm.pcrs", "'" + text + "' is not BANK:PCR[,PCR…] with BANK one of sha1, sha256, sha384, sha512");
  std::string_view rest = std::string_view(text).substr(colon + 1);
  if (rest.empty()) return bad(c, n, "tpm.pcrs", "no PCR listed");
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto item = rest.substr(0, comma);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || v > 23)
      return bad(c, n, "tpm.pcrs", "'" + std::string(item) + "' is not a PCR index 0–23");
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return {};
}

}  // namespace

Result<Config> parse_config(std::string_view yaml, std::string_view source) {
  Ctx c{source};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return fail(Code::ConfigError, std::string(source) + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  Config cfg;
  if (root.IsNull()) return cfg;
  try {
    MCIMD_CHECK(walk(c, root, "",
                     {
                         {"store",
                          [&](const YAML::Node& n) -> Status {
                            auto s = as_string(c, n, "store");
                            if (!s) return tl::unexpected(s.error());
                            if (!s->starts_with('/')) return bad(c, n, "store", "must be an absolute path");
                            cfg.store = *s;
                            return {};
                          }},
                         {"log-level",
                          [&](const YAML::Node& n) -> Status {
                            cfg.log_level = MCIMD_TRY(parse_level(c, n));
                            return {};
                          }},
                         {"queue-limit",
                          [&](const YAML::Node& n) -> Status {
                            cfg.queue_limit = static_cast<unsigned>(MCIMD_TRY(as_uint(c, n, "queue-limit", 4096)));
                            if (cfg.queue_limit == 0) return bad(c, n, "queue-limit", "must be at least 1");
                            return {};
                          }},
                         {"tpm",
                          [&](const YAML::Node& tpm) -> Status {
                            return walk(c, tpm, "tpm",
                                        {
                                            {"tcti",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.tpm.tcti = MCIMD_TRY(as_string(c, n, "tpm.tcti"));
                                               if (cfg.tpm.tcti.empty()) return bad(c, n, "tpm.tcti", "must not be empty");
                                               return {};
                                             }},
                                            {"pcrs",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.tpm.pcrs = MCIMD_TRY(as_string(c, n, "tpm.pcrs"));
                                               return check_pcrs(c, n, cfg.tpm.pcrs);
                                             }},
                                            {"require-resource-manager",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.tpm.require_resource_manager =
                                                   MCIMD_TRY(as_bool(c, n, "tpm.require-resource-manager"));
                                               return {};
                                             }},
                                            {"policy-authority",
                                             [&](const YAML::Node& n) -> Status {
                                               auto v = MCIMD_TRY(as_string(c, n, "tpm.policy-authority"));
                                               if (!v.starts_with('/'))
                                                 return bad(c, n, "tpm.policy-authority", "must be an absolute path");
                                               cfg.tpm.policy_authority = v;
                                               return {};
                                             }},
                                            {"allow-resettable-pcrs",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.tpm.allow_resettable_pcrs = MCIMD_TRY(as_bool(c, n, "tpm.allow-resettable-pcrs"));
                                               return {};
                                             }},
                                            {"nv-counter-index",
                                             [&](const YAML::Node& n) -> Status {
                                               auto v = MCIMD_TRY(as_uint(c, n, "tpm.nv-counter-index", 0x01ffffff));
                                               // TPM 2.0 Part 2 §13.1: NV indices are 0x01xxxxxx.
                                               if (v < 0x01000000)
                                                 return bad(c, n, "tpm.nv-counter-index", "not an NV index (0x01000000–0x01FFFFFF)");
                                               cfg.tpm.nv_counter_index = static_cast<uint32_t>(v);
                                               return {};
                                             }},
                                            {"deletion-counter-base",
                                             [&](const YAML::Node& n) -> Status {
                                               auto v = MCIMD_TRY(as_uint(c, n, "tpm.deletion-counter-base", 0x01ffffff));
                                               // Room for profile indices above it, all in the NV index range.
                                               if (v < 0x01000000 || v > 0x01f00000)
                                                 return bad(c, n, "tpm.deletion-counter-base",
                                                            "not an NV index with room above it (0x01000000–0x01F00000)");
                                               cfg.tpm.deletion_counter_base = static_cast<uint32_t>(v);
                                               return {};
                                             }},
                                            {"key-protection",
                                             [&](const YAML::Node& n) -> Status {
                                               auto v = MCIMD_TRY(as_string(c, n, "tpm.key-protection"));
                                               if (v != "tpm-aes" && v != "sealed")
                                                 return bad(c, n, "tpm.key-protection", "'" + v + "' is not one of tpm-aes, sealed");
                                               cfg.tpm.key_protection = v;
                                               return {};
                                             }},
                                            {"retries",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.tpm.retries = static_cast<unsigned>(MCIMD_TRY(as_uint(c, n, "tpm.retries", 100)));
                                               return {};
                                             }},
                                        });
                          }},
                         {"attestation",
                          [&](const YAML::Node& att) -> Status {
                            auto path = [&](const YAML::Node& n, std::string_view key) -> Result<std::filesystem::path> {
                              auto s = as_string(c, n, key);
                              if (!s) return tl::unexpected(s.error());
                              if (!s->empty() && !s->starts_with('/')) return bad(c, n, key, "must be an absolute path");
                              return std::filesystem::path(*s);
                            };
                            return walk(c, att, "attestation",
                                        {
                                            {"pcrs",
                                             [&](const YAML::Node& n) -> Status {
                                               if (!n.IsSequence()) return bad(c, n, "attestation.pcrs", "expected a list of PCR indices");
                                               cfg.attestation.pcrs.clear();
                                               for (const auto& item : n)
                                                 cfg.attestation.pcrs.push_back(
                                                     static_cast<unsigned>(MCIMD_TRY(as_uint(c, item, "attestation.pcrs", 23))));
                                               return {};
                                             }},
                                            {"event-log",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.attestation.event_log = MCIMD_TRY(path(n, "attestation.event-log"));
                                               return {};
                                             }},
                                            {"ima-log",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.attestation.ima_log = MCIMD_TRY(path(n, "attestation.ima-log"));
                                               return {};
                                             }},
                                            {"policy-trust",
                                             [&](const YAML::Node& n) -> Status {
                                               if (!n.IsSequence()) return bad(c, n, "attestation.policy-trust", "expected a list of PEM files");
                                               for (const auto& item : n)
                                                 cfg.attestation.policy_trust.push_back(MCIMD_TRY(path(item, "attestation.policy-trust")));
                                               return {};
                                             }},
                                        });
                          }},
                         {"access",
                          [&](const YAML::Node& access) -> Status {
                            return walk(c, access, "access",
                                        {
                                            {"modem-users",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.access.modem_users = MCIMD_TRY(as_ids<uid_t>(c, n, "access.modem-users", false));
                                               return {};
                                             }},
                                            {"modem-groups",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.access.modem_groups = MCIMD_TRY(as_ids<gid_t>(c, n, "access.modem-groups", true));
                                               return {};
                                             }},
                                            {"admin-users",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.access.admin_users = MCIMD_TRY(as_ids<uid_t>(c, n, "access.admin-users", false));
                                               return {};
                                             }},
                                            {"admin-groups",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.access.admin_groups = MCIMD_TRY(as_ids<gid_t>(c, n, "access.admin-groups", true));
                                               return {};
                                             }},
                                            {"agent-users",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.access.agent_users = MCIMD_TRY(as_ids<uid_t>(c, n, "access.agent-users", false));
                                               return {};
                                             }},
                                            {"agent-groups",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.access.agent_groups = MCIMD_TRY(as_ids<gid_t>(c, n, "access.agent-groups", true));
                                               return {};
                                             }},
                                        });
                          }},
                         {"dbus",
                          [&](const YAML::Node& dbus) -> Status {
                            return walk(c, dbus, "dbus",
                                        {
                                            {"ofono-compat",
                                             [&](const YAML::Node& n) -> Status {
                                               cfg.dbus.ofono_compat = MCIMD_TRY(as_bool(c, n, "dbus.ofono-compat"));
                                               return {};
                                             }},
                                            {"ofono-compat-mnc-length",
                                             [&](const YAML::Node& n) -> Status {
                                               auto v = MCIMD_TRY(as_uint(c, n, "dbus.ofono-compat-mnc-length", 3));
                                               // TS 23.003 §2.2: an MNC is two or three digits.
                                               if (v < 2) return bad(c, n, "dbus.ofono-compat-mnc-length", "must be 2 or 3");
                                               cfg.dbus.ofono_compat_mnc_length = static_cast<int>(v);
                                               return {};
                                             }},
                                        });
                          }},
                         {"provisioning",
                          [&](const YAML::Node& prov) -> Status {
                            return walk(c, prov, "provisioning",
                                        {
                                            {"operators",
                                             [&](const YAML::Node& n) -> Status {
                                               return parse_operators(c, n, cfg.provisioning.operators);
                                             }},
                                        });
                          }},
                     }));
  } catch (const YAML::Exception& e) {
    return fail(Code::ConfigError, std::string(source) + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (cfg.tpm.require_resource_manager && !tcti_has_resource_manager(cfg.tpm.tcti))
    return fail(Code::ConfigError,
                std::string(source) + ": tpm.tcti: '" + cfg.tpm.tcti +
                    "' reaches the TPM without a resource manager, where every TPM user could use mcimd's loaded "
                    "K; use device:/dev/tpmrm0 (or tabrmd), or set tpm.require-resource-manager: false for a "
                    "TPM only mcimd uses (tests, demos)");
  return cfg;
}

bool tcti_has_resource_manager(std::string_view tcti) {
  return tcti.starts_with("device:/dev/tpmrm") || tcti == "tabrmd" || tcti.starts_with("tabrmd:");
}

Result<Config> load_config(const std::filesystem::path& path) {
  auto text = read_text_file(path, 256 * 1024);
  if (!text) return fail(Code::ConfigError, "Failed to read configuration: " + text.error().message);
  return parse_config(*text, path.string());
}

}  // namespace mcimd::daemon
