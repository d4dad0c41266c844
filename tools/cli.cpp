#include "tools/cli.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <vector>

#include "common/bytes.hpp"
#include "common/file.hpp"
#include "dbus-api/names.hpp"
#include "protocol/evidence.hpp"
#include "protocol/quote.hpp"

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
    "  2  bad command line, bad hex input, unreadable or malformed input file, unwritable output\n"
    "  3  MacFailure: the network's AUTN did not verify\n"
    "  4  PlatformStateChanged: the platform no longer satisfies the profile's PCR policy\n"
    "  5  NotAuthorized (mcimd) or AccessDenied (bus policy)\n"
    "  6  NotFound: no such profile\n"
    "  7  mcimd or the bus cannot be reached\n"
    "attest validate exits 0 whenever mcimd answered, whether the platform is trusted or not.\n"
    "Errors are printed as \"mcimctl: <ErrorName>: <message>\" on standard error.\n";

struct Options {
  std::string bus_address;  // empty: the system bus
  bool json = false;
  std::string profile;
  std::string file;
  std::vector<std::string> rands;
  std::string autn;
  bool ims = false;
  // attest
  std::string ek_type = api::kEkTypeEcc;
  std::string out;
  std::string challenge;
  std::string nonce;
  std::string tpm2_tools_dir;
  std::string policy;
  // package
  std::string session;
  std::string receipt;
  // subscription
  std::string release;
  // provision
  std::string operator_url;
  std::string subscription;
  std::string agent_config;
  bool again = false;
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

// ---- attest ----

// Largest credential challenge document mcimctl reads: two base64url TPM structures of at most
// kMaxCredentialPartSize bytes each, and the JSON around them.
constexpr std::size_t kMaxChallengeDocumentSize = 64 * 1024;

// A JWS compact serialisation (RFC 7515 §7.1) as found in a file: base64url header, payload and
// signature joined by dots. Surrounding whitespace (a final newline) is not part of it.
std::string signed_policy_or_throw(std::string text, const std::string& file) {
  const auto space = " \t\r\n";
  text.erase(text.find_last_not_of(space) + 1);
  text.erase(0, std::min(text.size(), text.find_first_not_of(space)));
  if (text.empty()) throw UsageError(file + " is empty");
  if (text.size() > api::kMaxSignedPolicySize)
    throw UsageError(file + " holds " + std::to_string(text.size()) + " bytes; a signed policy may have at most " +
                     std::to_string(api::kMaxSignedPolicySize));
  auto base64url = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; };
  std::size_t dots = std::count(text.begin(), text.end(), '.');
  bool shaped = dots == 2 && text.front() != '.' && text.back() != '.' &&
                std::all_of(text.begin(), text.end(), [&](char c) { return c == '.' || base64url(c); });
  if (!shaped)
    throw UsageError(file + " is not a JWS compact serialisation (base64url header.payload.signature)");
  return text;
}

// TPM2_Quote's qualifying data: 1 to kMaxAttestationNonceSize bytes.
Bytes nonce_or_throw(const std::string& text) {
  auto bytes = from_hex(text, "--nonce");
  if (!bytes) throw UsageError(bytes.error().message);
  if (bytes->empty() || bytes->size() > api::kMaxAttestationNonceSize)
    throw UsageError("--nonce: expected 1 to " + std::to_string(api::kMaxAttestationNonceSize) + " bytes, got " +
                     std::to_string(bytes->size()));
  return *bytes;
}

// Reads an input file of at most max_size bytes; "-" is standard input.
std::string read_input_or_throw(const std::string& file, std::size_t max_size) {
  int fd = file == "-" ? dup(STDIN_FILENO) : open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw UsageError("Cannot open " + file + ": " + std::strerror(errno));
  std::string text;
  char buffer[8192];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      throw UsageError("Cannot read " + file + ": " + std::strerror(e));
    }
    if (n == 0) break;
    if (text.size() + static_cast<std::size_t>(n) > max_size) {
      close(fd);
      throw UsageError(file + " is larger than " + std::to_string(max_size) + " bytes");
    }
    text.append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  return text;
}

// Checked before calling mcimd, so that an attestation (a TPM quote) is not made for nothing.
void check_output_file_or_throw(const std::string& file) {
  std::filesystem::path parent = std::filesystem::absolute(file).parent_path();
  std::error_code ec;
  if (!std::filesystem::is_directory(parent, ec))
    throw UsageError("Cannot write " + file + ": no directory " + parent.string());
  if (std::filesystem::is_directory(file, ec)) throw UsageError("Cannot write " + file + ": it is a directory");
}

void make_output_dir_or_throw(const std::string& dir) {
  Status made = make_private_dir(dir);
  if (!made) throw UsageError("Cannot create " + dir + ": " + made.error().message);
}

void write_output_or_throw(const std::filesystem::path& file, std::string_view text) {
  Status written = write_file_atomic(file, text);
  if (!written) throw UsageError("Cannot write " + file.string() + ": " + written.error().message);
}

void write_output_or_throw(const std::filesystem::path& file, std::span<const uint8_t> data) {
  Status written = write_file_atomic(file, data);
  if (!written) throw UsageError("Cannot write " + file.string() + ": " + written.error().message);
}

// mcimd answered, but with something that is not what the protocol says.
int malformed_answer(std::ostream& err, const std::string& what, const Error& error) {
  err << "mcimctl: mcimd returned " << what << ": " << error.message << "\n";
  return kExitFailure;
}

std::string name_or_note(std::span<const uint8_t> tpm2b_public) {
  auto name = protocol::object_name(tpm2b_public);
  return name ? to_hex(*name) : std::string("(malformed public area)");
}

int cmd_attest_endorsement(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  if (!o.out.empty()) check_output_file_or_throw(o.out);
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto endorsement = (*connected)->get_endorsement(o.ek_type);
  if (!endorsement) return report(err, endorsement.error());
  protocol::EnrolmentRequest request{endorsement->ek_public, endorsement->ek_certificate, endorsement->ak_public};
  std::string document = protocol::to_json(request);
  // The operator parses the request strictly; a request it would refuse is better caught here.
  if (auto parsed = protocol::enrolment_request_from_json(document); !parsed)
    return malformed_answer(err, "an endorsement that is no valid enrolment request", parsed.error());
  if (!o.out.empty()) write_output_or_throw(o.out, document);
  if (o.json) {
    if (o.out.empty())
      out << document << "\n";
    else
      out << json{{"enrolment_request", o.out}}.dump(2) << "\n";
    return kExitOk;
  }
  out << "EK (" << o.ek_type << "):        TPM2B_PUBLIC, " << request.ek_public.size() << " bytes, name "
      << name_or_note(request.ek_public) << "\n"
      << "EK certificate:  "
      << (request.ek_certificate ? std::to_string(request.ek_certificate->size()) + " bytes (DER)"
                                 : std::string("none in the TPM"))
      << "\n"
      << "AK:              TPM2B_PUBLIC, " << request.ak_public.size() << " bytes, name "
      << name_or_note(request.ak_public) << "\n";
  if (o.out.empty())
    out << "Use --json or --out FILE for the enrolment request document.\n";
  else
    out << "Enrolment request written to " << o.out << ".\n";
  return kExitOk;
}

int cmd_attest_activate(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  std::string document = read_input_or_throw(o.challenge, kMaxChallengeDocumentSize);
  auto challenge = protocol::credential_challenge_from_json(document);
  if (!challenge) throw UsageError(o.challenge + ": " + challenge.error().message);
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto secret = (*connected)->activate_credential(o.ek_type, challenge->credential_blob, challenge->encrypted_secret);
  if (!secret) return report(err, secret.error());
  std::string text = hex(*secret);
  if (o.json)
    out << json{{"secret", text}}.dump(2) << "\n";
  else
    out << text << "\n";
  wipe(text.data(), text.size());
  return kExitOk;
}

int cmd_attest_evidence(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  Bytes nonce = nonce_or_throw(o.nonce);
  if (!o.out.empty()) check_output_file_or_throw(o.out);
  if (!o.tpm2_tools_dir.empty()) make_output_dir_or_throw(o.tpm2_tools_dir);
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto document = (*connected)->get_evidence(nonce);
  if (!document) return report(err, document.error());
  std::optional<std::string> hash;
  if (!o.tpm2_tools_dir.empty()) {
    auto evidence = protocol::evidence_from_json(*document);
    if (!evidence) return malformed_answer(err, "malformed evidence", evidence.error());
    if (Status written = protocol::write_tpm2_tools_files(*evidence, o.tpm2_tools_dir); !written) {
      if (written.error().code == Code::IoError) throw UsageError(written.error().message);
      return malformed_answer(err, "evidence tpm2-tools cannot check", written.error());
    }
    if (auto h = protocol::signature_hash(evidence->quote_signature)) hash = *h;
  }
  if (!o.out.empty()) write_output_or_throw(o.out, *document);
  if (o.out.empty()) {
    out << *document << "\n";
    return kExitOk;
  }
  if (o.json) {
    json written{{"evidence", o.out}};
    if (!o.tpm2_tools_dir.empty()) written["tpm2_tools"] = o.tpm2_tools_dir;
    out << written.dump(2) << "\n";
    return kExitOk;
  }
  out << "Evidence written to " << o.out << ".\n";
  if (!o.tpm2_tools_dir.empty()) {
    std::filesystem::path dir = o.tpm2_tools_dir;
    out << "quote.msg, quote.sig, quote.pcrs and ak.pub written to " << o.tpm2_tools_dir << "; check with\n"
        << "  tpm2_checkquote -u " << (dir / "ak.pub").string() << " -m " << (dir / "quote.msg").string() << " -s "
        << (dir / "quote.sig").string() << " -f " << (dir / "quote.pcrs").string() << " -g "
        << hash.value_or("sha256") << " -q " << hex(nonce) << "\n";
  }
  return kExitOk;
}

int cmd_attest_validate(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  // Leave room for whitespace around the JWS; signed_policy_or_throw() checks the exact bound.
  std::string policy =
      signed_policy_or_throw(read_input_or_throw(o.policy, api::kMaxSignedPolicySize + 4096), o.policy);
  Bytes nonce = nonce_or_throw(o.nonce);
  if (!o.out.empty()) make_output_dir_or_throw(o.out);
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto answer = (*connected)->validate_platform(policy, nonce);
  if (!answer) return report(err, answer.error());
  auto report_doc = protocol::platform_report_from_json(answer->report_json);
  if (!report_doc) return malformed_answer(err, "a malformed platform report", report_doc.error());
  if (!o.out.empty()) {
    // The quote's qualifying data is SHA-256 of these exact bytes: written unchanged.
    std::filesystem::path dir = o.out;
    write_output_or_throw(dir / "report.json", answer->report_json);
    write_output_or_throw(dir / "quote.msg", answer->quote_message);
    write_output_or_throw(dir / "quote.sig", answer->quote_signature);
  }
  if (o.json) {
    out << answer->report_json << "\n";
    return kExitOk;
  }
  out << "Verdict: " << (report_doc->trusted ? "trusted" : "not trusted") << "\n";
  for (const auto& check : report_doc->checks)
    if (!check.passed) out << "  failed: " << check.name << (check.reason.empty() ? "" : ": " + check.reason) << "\n";
  // The report lists every PCR value evaluated: too long to read, so text mode shows the verdict.
  if (o.out.empty())
    out << "Use --json or --out DIR for the signed report and its quote.\n";
  else
    out << "report.json, quote.msg and quote.sig written to " << o.out << ".\n";
  return kExitOk;
}

int cmd_policy_add(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  // The daemon checks the document; the bound here only keeps a wrong file from being sent.
  std::string document = read_input_or_throw(o.file, 64 * 1024);
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto id = (*connected)->add_pcr_policy(document);
  if (!id) return report(err, id.error());
  if (o.json)
    out << json{{"id", *id}}.dump(2) << "\n";
  else
    out << "Kept PCR policy " << *id << ".\n";
  return kExitOk;
}

int cmd_policy_list(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto policies = (*connected)->list_pcr_policies();
  if (!policies) return report(err, policies.error());
  if (o.json) {
    json list = json::array();
    for (const auto& p : *policies) list.push_back({{"id", p.id}, {"pcrs", p.pcrs}, {"active", p.active}});
    out << json{{"policies", list}}.dump(2) << "\n";
    return kExitOk;
  }
  if (policies->empty()) out << "No signed PCR policy is kept.\n";
  for (const auto& p : *policies) out << p.id << "  " << p.pcrs << (p.active ? "  (approves the platform)" : "") << "\n";
  return kExitOk;
}

// Remote provisioning by hand (the provisioning agent makes the same calls): the package request
// for an operator's session, and the install of a package the operator sent.
int cmd_package_request(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  Bytes nonce = nonce_or_throw(o.nonce);
  if (nonce.size() != 32) throw UsageError("--nonce must be the operator's 32-byte nonce (64 hex digits)");
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto request = (*connected)->request_package(o.session, nonce);
  if (!request) return report(err, request.error());
  out << *request << "\n";
  return kExitOk;
}

// A signed document from a file, without the line ends an editor or `echo` adds.
std::string read_signed_text(const std::string& file, std::size_t max) {
  std::string text = read_input_or_throw(file, max);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

// What an install answers (InstallPackage, ChangeSubscription): the profile and its receipt.
int print_installed(const Options& o, const api::Client::Installed& installed, std::string_view note,
                    std::ostream& out) {
  if (!o.receipt.empty()) write_output_or_throw(o.receipt, installed.receipt + "\n");
  if (o.json) {
    out << json{{"profile", installed.profile}, {"receipt", json::parse(installed.receipt, nullptr, false)}}.dump(2)
        << "\n";
    return kExitOk;
  }
  out << "Installed " << installed.profile << note << ".\n";
  if (!o.receipt.empty()) out << "Install receipt written to " << o.receipt << ".\n";
  return kExitOk;
}

int cmd_package_install(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  // The daemon checks the package; the bound here only keeps a wrong file from being sent.
  const std::string package = read_signed_text(o.file, 256 * 1024);
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto installed = (*connected)->install_package(package);
  if (!installed) return report(err, installed.error());
  return print_installed(o, *installed, "", out);
}

// Change of subscription by hand (the provisioning agent makes the same call): the old
// operator's release and the new operator's package.
int cmd_subscription_change(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  // The daemon checks both; the bounds here only keep a wrong file from being sent.
  const std::string release = read_signed_text(o.release, 64 * 1024);
  const std::string package = read_signed_text(o.file, 256 * 1024);
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto installed = (*connected)->change_subscription(release, package);
  if (!installed) return report(err, installed.error());
  return print_installed(o, *installed,
                         "; the released profile is deleted after this one's first successful authentication (or "
                         "`mcimctl subscription confirm`)",
                         out);
}

int cmd_subscription_confirm(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  const std::string path = profile_or_throw(o.profile);
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto receipt = (*connected)->confirm_profile(path);
  if (!receipt) return report(err, receipt.error());
  if (!o.receipt.empty()) {
    write_output_or_throw(o.receipt, *receipt + "\n");
    out << "Deleted the replaced profile; deletion receipt written to " << o.receipt << ".\n";
    return kExitOk;
  }
  out << *receipt << "\n";
  return kExitOk;
}

// One receipt per line (JSON), oldest first.
int cmd_deletion_receipts(Connector& connect, std::ostream& out, std::ostream& err) {
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto receipts = (*connected)->deletion_receipts();
  if (!receipts) return report(err, receipts.error());
  for (const auto& r : *receipts) out << r << "\n";
  return kExitOk;
}

// An operator's signed lifecycle command, handed to mcimd (the provisioning agent does the same).
int cmd_command(Connector& connect, const Options& o, std::ostream& out, std::ostream& err) {
  const std::string command = read_signed_text(o.file, 64 * 1024);
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto result = (*connected)->apply_command(command);
  if (!result) return report(err, result.error());
  out << *result << "\n";
  return kExitOk;
}

int cmd_fallback(Connector& connect, std::ostream& out, std::ostream& err) {
  auto connected = connect();
  if (!connected) return report(err, connected.error());
  auto done = (*connected)->request_fallback();
  if (!done) return report(err, done.error());
  out << "Switched to the bootstrap profile; switch back with `mcimctl enable <profile>`.\n";
  return kExitOk;
}

// Remote provisioning end to end is the provisioning agent's work: it speaks HTTPS, which mcimctl
// never does, and keeps its state under its own account. mcimctl hands over to it, so that one
// command line runs the whole flow with the agent's configuration, and answers its exit status.
int cmd_provision(const Options& o, std::ostream& err) {
  const char* agent = std::getenv("MCIMD_AGENT");
  const std::string binary = agent && *agent ? agent : MCIMD_AGENT_PATH;
  std::vector<std::string> args = {binary, "--operator", o.operator_url};
  if (!o.agent_config.empty()) args.insert(args.end(), {"--config", o.agent_config});
  if (!o.subscription.empty()) args.insert(args.end(), {"--subscription", o.subscription});
  if (!o.bus_address.empty()) args.insert(args.end(), {"--bus-address", o.bus_address});
  if (o.again) args.push_back("--again");
  if (o.json) args.push_back("--json");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  err.flush();
  ::execv(binary.c_str(), argv.data());
  err << "mcimctl: Failed to start " << binary << ": " << std::strerror(errno) << "\n";
  return kExitFailure;
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

  auto* attest = app.add_subcommand("attest", "Platform attestation with an operator (admin)");
  attest->require_subcommand(1);
  auto ek_option = [&](CLI::App* c) {
    c->add_option("--ek", o.ek_type, "Endorsement key type: ecc (default) or rsa")
        ->check(CLI::IsMember({api::kEkTypeEcc, api::kEkTypeRsa}));
  };
  auto* endorsement = attest->add_subcommand(
      "endorsement", "Print the EK, its certificate and the AK as an enrolment request document (JSON)");
  ek_option(endorsement);
  endorsement->add_option("--out", o.out, "Write the enrolment request document to this file");
  auto* activate = attest->add_subcommand(
      "activate", "Activate an operator's credential challenge: prints the secret the TPM releases");
  activate->add_option("--challenge", o.challenge, "Credential challenge document (JSON), or - for standard input")
      ->required();
  ek_option(activate);
  auto* evidence = attest->add_subcommand("evidence", "Print evidence (quote, PCRs, logs) for an operator's nonce");
  evidence->add_option("--nonce", o.nonce, "The operator's nonce, 1 to 64 bytes in hex")->required();
  evidence->add_option("--out", o.out, "Write the evidence document to this file");
  evidence->add_option("--tpm2-tools", o.tpm2_tools_dir,
                       "Also write quote.msg, quote.sig, quote.pcrs and ak.pub for tpm2_checkquote into this "
                       "directory (created if absent)");
  auto* validate = attest->add_subcommand(
      "validate", "Evaluate the platform against an operator's signed policy and report the verdict");
  validate->add_option("--policy", o.policy, "Signed policy (JWS compact serialisation), or - for standard input")
      ->required();
  validate->add_option("--nonce", o.nonce, "The operator's nonce, 1 to 64 bytes in hex")->required();
  validate->add_option("--out", o.out,
                       "Write report.json (the exact bytes the quote covers), quote.msg and quote.sig into this "
                       "directory (created if absent)");

  auto* policy = app.add_subcommand("policy", "Signed PCR policies: the platform states the policy authority approves");
  policy->require_subcommand(1);
  auto* policy_add = policy->add_subcommand("add", "Keep a signed PCR policy (mcimd-pcr-policy-1 JSON) (admin)");
  policy_add->add_option("file", o.file, "The policy document, or - for standard input")->required();
  auto* policy_list = policy->add_subcommand("list", "List the kept PCR policies");

  auto* package = app.add_subcommand("package", "Remote provisioning by hand: package requests and MCIM packages");
  package->require_subcommand(1);
  auto* package_request = package->add_subcommand(
      "request", "Print the package request (mcimd-package-request-1 JSON) for an operator's session (agent, admin)");
  package_request->add_option("--session", o.session, "The operator's session id")->required();
  package_request->add_option("--nonce", o.nonce, "The operator's nonce, 64 hex digits")->required();
  auto* package_install = package->add_subcommand("install", "Install an MCIM package (JWS compact) (agent, admin)");
  package_install->add_option("file", o.file, "The package, or - for standard input")->required();
  package_install->add_option("--receipt", o.receipt, "Write the install receipt (JSON) to this file");

  auto* subscription = app.add_subcommand("subscription", "Change of subscription to another operator");
  subscription->require_subcommand(1);
  auto* subscription_change = subscription->add_subcommand(
      "change", "Install the new operator's package with the current operator's release (agent, admin)");
  subscription_change->add_option("--release", o.release, "The release (JWS compact), or - for standard input")
      ->required();
  subscription_change->add_option("package", o.file, "The new operator's MCIM package (JWS compact)")->required();
  subscription_change->add_option("--receipt", o.receipt, "Write the install receipt (JSON) to this file");
  auto* subscription_confirm = subscription->add_subcommand(
      "confirm", "The new profile works: delete the profile it replaces now and print its deletion receipt (admin)");
  subscription_confirm->add_option("profile", o.profile, "The new profile: index or object path")->required();
  subscription_confirm->add_option("--receipt", o.receipt, "Write the deletion receipt (JSON) to this file");
  auto* deletion_receipts = app.add_subcommand(
      "deletion-receipts", "Print the receipts of the recent deletions, one JSON document per line (agent, admin)");

  auto* command = app.add_subcommand(
      "command", "Apply an operator's signed lifecycle command (mcimd-command-1 JWS) (agent, admin)");
  command->add_option("file", o.file, "The command (JWS compact), or - for standard input")->required();
  auto* fallback = app.add_subcommand(
      "fallback", "Switch to the bootstrap profile: the operational one cannot attach (modem, admin)");

  auto* provision = app.add_subcommand(
      "provision", "Provision an MCIM from an operator over HTTPS: runs mcimd-agent, whose exit status it answers");
  provision->add_option("--operator", o.operator_url, "Operator base URL (https://...)")->required();
  provision->add_option("--subscription", o.subscription, "Existing subscription of the operator to join");
  provision->add_option("--config", o.agent_config, "mcimd-agent's configuration (default /etc/mcimd/agent.yaml)");
  provision->add_flag("--again", o.again, "Set a previous provisioning aside and provision anew");

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
    if (endorsement->parsed()) return cmd_attest_endorsement(connect, o, out, err);
    if (activate->parsed()) return cmd_attest_activate(connect, o, out, err);
    if (evidence->parsed()) return cmd_attest_evidence(connect, o, out, err);
    if (validate->parsed()) return cmd_attest_validate(connect, o, out, err);
    if (policy_add->parsed()) return cmd_policy_add(connect, o, out, err);
    if (policy_list->parsed()) return cmd_policy_list(connect, o, out, err);
    if (package_request->parsed()) return cmd_package_request(connect, o, out, err);
    if (package_install->parsed()) return cmd_package_install(connect, o, out, err);
    if (subscription_change->parsed()) return cmd_subscription_change(connect, o, out, err);
    if (subscription_confirm->parsed()) return cmd_subscription_confirm(connect, o, out, err);
    if (deletion_receipts->parsed()) return cmd_deletion_receipts(connect, out, err);
    if (command->parsed()) return cmd_command(connect, o, out, err);
    if (fallback->parsed()) return cmd_fallback(connect, out, err);
    if (provision->parsed()) return cmd_provision(o, err);
  } catch (const UsageError& e) {
    return usage(err, e.what());
  } catch (const std::exception& e) {
    err << "mcimctl: " << e.what() << "\n";
    return kExitFailure;
  }
  return usage(err, "no command given");
}

}  // namespace mcimd::ctl
