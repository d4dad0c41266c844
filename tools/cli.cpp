#include "tools/cli.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <vector>

#include "common/bytes.hpp"
#include "dbus-api/names.hpp"

namespace mcimd::ctl {

using nlohmann::json;

int exit_code_for(const api::CallError& error) {
  if (auto code = api::code_from_error_name(error.name)) {
    switch (*code) {
      case Code::MacFailure:
        return kExitMacFailure;
      case Code::PlatformStateChanged:
        return kExitPlatformStateChanged;
      case Code::NotAuthorized:
        return kExitNotAuthorized;
      case Code::NotFound:
        return kExitNotFound;
      default:
        return kExitFailure;
    }
  }
  if (error.name == "org.freedesktop.DBus.Error.AccessDenied") return kExitNotAuthorized;
  // sd-bus names local errno failures System.Error.<ERRNO>; a dropped connection is one.
  for (const char* unreachable :
       {api::kNoServerError, "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
        "System.Error.ENOTCONN", "System.Error.ECONNRESET", "System.Error.ECONNREFUSED"})
    if (error.name == unreachable) return kExitUnreachable;
  return kExitFailure;
}

Result<std::string> profile_argument(std::string_view text) {
  if (api::parse_profile_path(text)) return std::string(text);
  uint32_t index = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
  if (!text.empty() && ec == std::errc() && end == text.data() + text.size()) return api::profile_path(index);
  return fail(Code::InvalidArgument, "'" + std::string(text) +
                                         "' is neither a profile index nor a profile object path (" +
                                         api::kProfilePathPrefix + "/<index>)");
}

namespace {

// TS 33.102 6.3: RAND and AUTN are 128 bits.
constexpr std::size_t kChallengeSize = 16;

constexpr const char* kExitStatusHelp =
    "Exit status:\n"
    "  0  success (an AUTS answer to authenticate is a success too)\n"
    "  1  any other error\n"
    "  2  bad command line, bad hex input or unreadable file\n"
    "  3  MacFailure: the network's AUTN did not verify\n"
    "  4  PlatformStateChanged: the platform no longer satisfies the profile's PCR policy\n"
    "  5  NotAuthorized (mcimd) or AccessDenied (bus policy)\n"
    "  6  NotFound: no such profile\n"
    "  7  mcimd or the bus cannot be reached\n"
    "Errors are printed as \"mcimctl: <ErrorName>: <message>\" on standard error.\n";

struct Options {
  std::string bus_address;  // empty: the system bus
  bool json = false;
  std::string profile;
  std::string file;
  std::vector<std::string> rands;
  std::string autn;
  bool ims = false;
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Connects on first use, so that bad arguments are reported (exit 2) before the bus is tried.
class Connector {
 public:
  explicit Connector(const Options& o) : address_(o.bus_address) {}
  api::CallResult<api::Client*> operator()() {
    if (!client_) {
      auto c = api::Client::connect(address_.empty() ? std::nullopt : std::optional(address_));
      if (!c) return tl::unexpected(c.error());
      client_.emplace(std::move(*c));
    }
    return &*client_;
  }

 private:
  std::string address_;
  std::optional<api::Client> client_;
};

std::string hex(std::span<const uint8_t> data) { return to_hex(data); }

int report(std::ostream& err, const api::CallError& error) {
  err << "mcimctl: " << error.short_name() << ": " << error.message << "\n";
  return exit_code_for(error);
}

int usage(std::ostream& err, const std::string& message) {
  err << "mcimctl: " << message << "\n";
  return kExitUsage;
}

std::string profile_or_throw(const std::string& text) {
  auto path = profile_argument(text);
  if (!path) throw UsageError(path.error().message);
  return *path;
}

Bytes challenge_or_throw(const std::string& text, const std::string& what) {
  auto bytes = from_hex(text, what, kChallengeSize);
  if (!bytes) throw UsageError(bytes.error().message);
  return *bytes;
}

json profile_json(const api::ProfileProperties& p, const std::string& active) {
  return json{{"path", p.path},
              {"index", p.index},
              {"iccid", p.iccid},
              {"imsi", p.imsi},
              {"operator_id", p.operator_id},
              {"state", p.state},
              {"class", p.profile_class},
              {"active", p.path == active}};
}

// Opens the profile document for InstallProfile. mcimd accepts only regular files (a pipe could
// stall it), so standard input ("-") or a pipe is first copied into a sealed-size memfd.
int open_document(const std::string& file) {
  int fd = file == "-" ? dup(STDIN_FILENO) : open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw UsageError("Cannot open " + file + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    throw UsageError("Cannot inspect " + file + ": " + std::strerror(e));
  }
  if (S_ISREG(st.st_mode)) return fd;
  int memfd = memfd_create("mcimctl-profile", MFD_CLOEXEC);
  if (memfd < 0) {
    int e = errno;
    close(fd);
    throw UsageError(std::string("Cannot create a memfd: ") + std::strerror(e));
  }
  SecureBytes buffer(api::kMaxProfileDocumentSize + 1);
  std::size_t used = 0;
  while (used < buffer.size()) {
    ssize_t n = read(fd, buffer.data() + used, buffer.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      close(memfd);
      throw UsageError("Cannot read " + file + ": " + std::strerror(e));
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  close(fd);
  if (used > api::kMaxProfileDocumentSize) {
    close(memfd);
    throw UsageError(file + " is larger than " + std::to_string(api::kMaxProfileDocumentSize) + " bytes");
  }
  std::size_t written = 0;
  while (written < used) {
    ssize_t n = write(memfd, buffer.data() + written, used - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(memfd);
      throw UsageError(std::string("Cannot write the memfd: ") + std::strerror(e));
    }
    written += static_cast<std::size_t>(n);
  }
  return memfd;
}

int cmd_list(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  api::Client& client = **connected;
  // One GetManagedObjects call returns every profile with its properties.
  auto managed = client.managed_profiles();
  if (!managed) return report(err, managed.error());
  auto manager = client.manager();
  if (!manager) return report(err, manager.error());
  const std::vector<api::ProfileProperties>& profiles = *managed;
  if (o.json) {
    json list = json::array();
    for (const auto& p : profiles) list.push_back(profile_json(p, manager->active_profile));
    out << json{{"profiles", list}}.dump(2) << "\n";
    return kExitOk;
  }
  if (profiles.empty()) {
    out << "No profiles installed.\n";
    return kExitOk;
  }
  auto width = [&](auto field, std::size_t header) {
    std::size_t w = header;
    for (const auto& p : profiles) w = std::max(w, field(p).size());
    return w + 2;
  };
  auto pad = [](const std::string& s, std::size_t w) { return s + std::string(w > s.size() ? w - s.size() : 1, ' '); };
  std::size_t wi = width([](const auto& p) { return std::to_string(p.index); }, 5);
  std::size_t wc = width([](const auto& p) { return p.iccid; }, 5);
  std::size_t wm = width([](const auto& p) { return p.imsi; }, 4);
  std::size_t wo = width([](const auto& p) { return p.operator_id; }, 8);
  std::size_t ws = width([](const auto& p) { return p.state; }, 5);
  std::size_t wk = width([](const auto& p) { return p.profile_class; }, 5);
  out << pad("INDEX", wi) << pad("ICCID", wc) << pad("IMSI", wm) << pad("OPERATOR", wo) << pad("STATE", ws)
      << pad("CLASS", wk) << "ACTIVE\n";
  for (const auto& p : profiles) {
    std::string line = pad(std::to_string(p.index), wi) + pad(p.iccid, wc) + pad(p.imsi, wm) + pad(p.operator_id, wo) +
                       pad(p.state, ws) + pad(p.profile_class, wk) + (p.path == manager->active_profile ? "*" : "");
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << "\n";
  }
  return kExitOk;
}

int cmd_show(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  std::string path = profile_or_throw(o.profile);
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  api::Client& client = **connected;
  auto p = client.profile(path);
  if (!p) return report(err, p.error());
  auto manager = client.manager();
  if (!manager) return report(err, manager.error());
  if (o.json) {
    out << profile_json(*p, manager->active_profile).dump(2) << "\n";
    return kExitOk;
  }
  out << "Profile:   " << p->path << "\n"
      << "Index:     " << p->index << "\n"
      << "ICCID:     " << p->iccid << "\n"
      << "IMSI:      " << p->imsi << "\n"
      << "Operator:  " << p->operator_id << "\n"
      << "State:     " << p->state << "\n"
      << "Class:     " << p->profile_class << "\n"
      << "Active:    " << (p->path == manager->active_profile ? "yes" : "no") << "\n";
  return kExitOk;
}

int cmd_status(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  api::Client& client = **connected;
  auto manager = client.manager();
  if (!manager) return report(err, manager.error());
  bool none = manager->active_profile == "/";
  if (o.json) {
    out << json{{"active_profile", none ? json(nullptr) : json(manager->active_profile)},
                {"platform_state", manager->platform_state}}
               .dump(2)
        << "\n";
    return kExitOk;
  }
  out << "Active profile:  " << (none ? "none" : manager->active_profile) << "\n"
      << "Platform state:  " << manager->platform_state << "\n";
  return kExitOk;
}

int cmd_install(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  int fd = open_document(o.file);
  auto connected = connect();
  if (!connected) {
    close(fd);
    return report(err, connected.error());
  }
  auto path = (*connected)->install_profile(fd);
  close(fd);
  if (!path) return report(err, path.error());
  if (o.json)
    out << json{{"profile", *path}}.dump(2) << "\n";
  else
    out << *path << "\n";
  return kExitOk;
}

int cmd_profile_command(Connector& connect, const Options& o, std::ostream& out, std::ostream& err,
                        const std::string& verb) {
  std::string path = profile_or_throw(o.profile);
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  api::Client& client = **connected;
  api::CallResult<void> result = verb == "enable"    ? client.enable_profile(path)
                                 : verb == "disable" ? client.disable_profile(path)
                                                     : client.delete_profile(path);
  if (!result) return report(err, result.error());
  std::string done = verb + "d";
  if (o.json)
    out << json{{"profile", path}, {"result", done}}.dump(2) << "\n";
  else
    out << "Profile " << path << " " << done << ".\n";
  return kExitOk;
}

int cmd_authenticate(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  std::string path = profile_or_throw(o.profile);
  if (o.rands.size() != 1) throw UsageError("authenticate takes exactly one --rand");
  Bytes rand = challenge_or_throw(o.rands.front(), "--rand");
  Bytes autn = challenge_or_throw(o.autn, "--autn");
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  api::Client& client = **connected;
  auto result = o.ims ? client.ims_authenticate(path, rand, autn) : client.umts_authenticate(path, rand, autn);
  if (!result) return report(err, result.error());
  json doc = json::object();
  if (result->auts) {
    doc["auts"] = hex(*result->auts);
  } else {
    if (result->res) doc["res"] = hex(*result->res);
    if (result->ck) doc["ck"] = hex(*result->ck);
    if (result->ik) doc["ik"] = hex(*result->ik);
  }
  if (o.json) {
    out << doc.dump(2) << "\n";
  } else {
    for (const char* key : {"res", "ck", "ik", "auts"})
      if (doc.contains(key)) out << key << ": " << doc[key].get<std::string>() << "\n";
  }
  return kExitOk;
}

int cmd_gsm_authenticate(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  std::string path = profile_or_throw(o.profile);
  // TS 33.102 6.8.1.2: a GSM run uses two or three triplets; one is allowed for a quick check.
  if (o.rands.empty() || o.rands.size() > 3) throw UsageError("gsm-authenticate takes one to three --rand");
  std::vector<Bytes> rands;
  for (std::size_t i = 0; i < o.rands.size(); ++i)
    rands.push_back(challenge_or_throw(o.rands[i], "--rand " + std::to_string(i + 1)));
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  api::Client& client = **connected;
  auto result = client.gsm_authenticate(path, rands);
  if (!result) return report(err, result.error());
  json list = json::array();
  for (const auto& t : *result) list.push_back(json{{"sres", hex(t.sres)}, {"kc", hex(t.kc)}});
  if (o.json) {
    out << json{{"results", list}}.dump(2) << "\n";
  } else {
    for (std::size_t i = 0; i < list.size(); ++i)
      out << "rand " << i + 1 << ": sres=" << list[i]["sres"].get<std::string>()
          << " kc=" << list[i]["kc"].get<std::string>() << "\n";
  }
  return kExitOk;
}

}  // namespace

int run(int argc, char** argv, std::ostream& out, std::ostream& err) {
  Options o;
  CLI::App app{"mcimctl: manage and query the mcimd trusted environment (org.mcimd.Tre1) over D-Bus."};
  app.name("mcimctl");
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command
  app.add_option("--bus-address", o.bus_address,
                 "D-Bus address to use instead of the system bus (which honours DBUS_SYSTEM_BUS_ADDRESS)");
  app.add_flag("--json", o.json, "Print one JSON object instead of text");
  app.footer(kExitStatusHelp);

  auto* list = app.add_subcommand("list", "List installed profiles");
  auto* status = app.add_subcommand("status", "Show the active profile and the platform state");
  auto* show = app.add_subcommand("show", "Show one profile");
  show->add_option("profile", o.profile, "Profile index or object path")->required();
  auto* install = app.add_subcommand("install", "Install a factory profile from a YAML file (admin)");
  install->add_option("file", o.file, "YAML document, or - for standard input")->required();
  std::map<std::string, CLI::App*> commands;
  for (const char* verb : {"enable", "disable", "delete"}) {
    auto* c = app.add_subcommand(
        verb, std::string(1, static_cast<char>(std::toupper(verb[0]))) + (verb + 1) + " a profile (admin)");
    c->add_option("profile", o.profile, "Profile index or object path")->required();
    commands[verb] = c;
  }
  auto* auth = app.add_subcommand("authenticate", "Run UMTS AKA: prints res, ck, ik, or auts on a sync failure");
  auth->add_option("profile", o.profile, "Profile index or object path")->required();
  auth->add_option("--rand", o.rands, "RAND, 16 bytes in hex")->required()->expected(1);
  auth->add_option("--autn", o.autn, "AUTN, 16 bytes in hex")->required();
  auth->add_flag("--ims", o.ims, "Use ImsAuthenticate (IMS AKA) instead of UmtsAuthenticate");
  auto* gsm = app.add_subcommand("gsm-authenticate", "Run GSM authentication: prints sres and kc per RAND");
  gsm->add_option("profile", o.profile, "Profile index or object path")->required();
  gsm->add_option("--rand", o.rands, "RAND, 16 bytes in hex; give it one to three times")->required()->take_all();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e, out, err);
    return code == 0 ? kExitOk : kExitUsage;
  }

  try {
    Connector connect(o);
    if (list->parsed()) return cmd_list(connect, o, out, err);
    if (status->parsed()) return cmd_status(connect, o, out, err);
    if (show->parsed()) return cmd_show(connect, o, out, err);
    if (install->parsed()) return cmd_install(connect, o, out, err);
    for (auto& [verb, c] : commands)
      if (c->parsed()) return cmd_profile_command(connect, o, out, err, verb);
    if (auth->parsed()) return cmd_authenticate(connect, o, out, err);
    if (gsm->parsed()) return cmd_gsm_authenticate(connect, o, out, err);
  } catch (const UsageError& e) {
    return usage(err, e.what());
  } catch (const std::exception& e) {
    err << "mcimctl: " << e.what() << "\n";
    return kExitFailure;
  }
  return usage(err, "no command given");
}

}  // namespace mcimd::ctl
