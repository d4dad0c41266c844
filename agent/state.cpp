#include "agent/state.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/config.hpp"
#include "common/bytes.hpp"
#include "common/file.hpp"

namespace mcimd::agent {

namespace {

using nlohmann::json;

constexpr const char* kFormat = "mcimd-agent-state-1";

tl::unexpected<Error> corrupt(std::string_view field, std::string_view why) {
  return fail(Code::StoreCorrupt, "agent state: " + std::string(field) + ": " + std::string(why));
}

// Every key of `object` must be one of `known`.
Status only_known(const json& object, std::string_view where, const std::set<std::string>& known) {
  for (const auto& [key, _] : object.items())
    if (!known.count(key)) return corrupt(std::string(where) + "." + key, "unknown field");
  return {};
}

Result<std::string> text_of(const json& object, std::string_view where, const char* key) {
  auto it = object.find(key);
  const std::string field = std::string(where) + "." + key;
  if (it == object.end()) return corrupt(field, "missing");
  if (!it->is_string()) return corrupt(field, "not a string");
  return it->get<std::string>();
}

Result<std::optional<std::string>> optional_text_of(const json& object, std::string_view where, const char* key) {
  if (!object.contains(key) || object.at(key).is_null()) return std::optional<std::string>();
  return std::optional<std::string>(MCIMD_TRY(text_of(object, where, key)));
}

bool is_device_id(std::string_view s) {
  return !s.empty() && s.size() <= 256 && s.size() % 2 == 0 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<std::string> operator_of(const json& object, std::string_view where) {
  auto url = MCIMD_TRY(text_of(object, where, "operator"));
  auto normal = normalise_operator_url(url);
  if (!normal || *normal != url) return corrupt(std::string(where) + ".operator", "not an operator URL");
  return url;
}

Result<std::string> device_of(const json& object, std::string_view where) {
  auto device = MCIMD_TRY(text_of(object, where, "device"));
  if (!is_device_id(device)) return corrupt(std::string(where) + ".device", "not a lower-case hex device id");
  return device;
}

Result<Step> step_of(const json& run) {
  auto text = MCIMD_TRY(text_of(run, "run", "step"));
  for (Step s : {Step::Session, Step::Package, Step::Installed, Step::Done})
    if (text == to_string(s)) return s;
  return corrupt("run.step", "'" + text + "' is not session, package, installed or done");
}

Result<RunState> run_from(const json& j) {
  if (!j.is_object()) return corrupt("run", "not an object");
  MCIMD_CHECK(only_known(j, "run",
                         {"step", "operator", "device", "subscription", "session", "session_expires", "session_nonce", "package_id",
                          "package", "profile", "receipt"}));
  RunState run;
  run.step = MCIMD_TRY(step_of(j));
  run.operator_url = MCIMD_TRY(operator_of(j, "run"));
  run.device = MCIMD_TRY(device_of(j, "run"));
  run.subscription = MCIMD_TRY(optional_text_of(j, "run", "subscription"));
  if (run.subscription && !is_protocol_id(*run.subscription)) return corrupt("run.subscription", "not a subscription id");
  run.session = MCIMD_TRY(text_of(j, "run", "session"));
  run.session_expires = MCIMD_TRY(text_of(j, "run", "session_expires"));
  if (!protocol::parse_timestamp(run.session_expires)) return corrupt("run.session_expires", "not a TIME");
  run.session_nonce = MCIMD_TRY(optional_text_of(j, "run", "session_nonce")).value_or("");
  run.package_id = MCIMD_TRY(text_of(j, "run", "package_id"));
  run.package = MCIMD_TRY(optional_text_of(j, "run", "package")).value_or("");
  run.profile = MCIMD_TRY(optional_text_of(j, "run", "profile")).value_or("");
  run.receipt = MCIMD_TRY(optional_text_of(j, "run", "receipt")).value_or("");
  // What each step resumes with must be there.
  if (run.step == Step::Session) {
    auto nonce = base64url_decode(run.session_nonce, "run.session_nonce");
    if (!nonce || nonce->size() != protocol::kProvisioningNonceSize)
      return corrupt("run.session_nonce", "missing or not a 32-byte nonce at step session");
  }
  if (run.step == Step::Package && run.package.empty()) return corrupt("run.package", "missing at step package");
  if ((run.step == Step::Installed || run.step == Step::Done) && run.profile.empty())
    return corrupt("run.profile", "missing at step " + std::string(to_string(run.step)));
  if (run.step == Step::Installed && run.receipt.empty()) return corrupt("run.receipt", "missing at step installed");
  return run;
}

json to_json_run(const RunState& r) {
  json j = {{"step", to_string(r.step)},
            {"operator", r.operator_url},
            {"device", r.device},
            {"session", r.session},
            {"session_expires", r.session_expires},
            {"package_id", r.package_id}};
  if (r.subscription) j["subscription"] = *r.subscription;
  if (!r.session_nonce.empty()) j["session_nonce"] = r.session_nonce;
  if (!r.package.empty()) j["package"] = r.package;
  if (!r.profile.empty()) j["profile"] = r.profile;
  if (!r.receipt.empty()) j["receipt"] = r.receipt;
  return j;
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// The descriptor of the state file, closed on every path.
struct StateFd {
  int fd = -1;
  ~StateFd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string_view to_string(Step step) {
  switch (step) {
    case Step::Session: return "session";
    case Step::Package: return "package";
    case Step::Installed: return "installed";
    case Step::Done: return "done";
  }
  return "package";
}

std::string_view to_string(Resume resume) {
  switch (resume) {
    case Resume::Fresh: return "fresh";
    case Resume::AlreadyDone: return "already-done";
    case Resume::ReuseSession: return "reuse-session";
    case Resume::NewSession: return "new-session";
    case Resume::InstallPackage: return "install-package";
    case Resume::SendReceipt: return "send-receipt";
    case Resume::OtherOperator: return "other-operator";
  }
  return "fresh";
}

Resume decide_resume(const AgentState& state, const ResumeContext& context) {
  if (!state.run || context.again) return Resume::Fresh;
  const RunState& run = *state.run;
  if (run.step == Step::Done) return run.operator_url == context.operator_url ? Resume::AlreadyDone : Resume::Fresh;
  if (run.operator_url != context.operator_url) return Resume::OtherOperator;
  switch (run.step) {
    case Step::Session: {
      auto expires = protocol::parse_timestamp(run.session_expires);
      return expires && context.now < *expires ? Resume::ReuseSession : Resume::NewSession;
    }
    case Step::Package: return Resume::InstallPackage;
    case Step::Installed: return Resume::SendReceipt;
    case Step::Done: break;
  }
  return Resume::AlreadyDone;
}

bool AgentState::enrolled(std::string_view operator_url, std::string_view device) const {
  return std::any_of(enrolments.begin(), enrolments.end(),
                     [&](const Enrolment& e) { return e.operator_url == operator_url && e.device == device; });
}

std::string to_json(const AgentState& state) {
  json enrolments = json::array();
  for (const auto& e : state.enrolments) enrolments.push_back({{"operator", e.operator_url}, {"device", e.device}});
  json j = {{"format", kFormat}, {"enrolments", enrolments}, {"run", nullptr}};
  if (state.run) j["run"] = to_json_run(*state.run);
  return j.dump(2) + "\n";
}

Result<AgentState> state_from_json(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return corrupt("(document)", "not JSON");
  if (!j.is_object()) return corrupt("(document)", "not an object");
  MCIMD_CHECK(only_known(j, "(document)", {"format", "enrolments", "run"}));
  if (MCIMD_TRY(text_of(j, "(document)", "format")) != kFormat) return corrupt("format", std::string("not ") + kFormat);
  AgentState state;
  auto list = j.find("enrolments");
  if (list == j.end() || !list->is_array()) return corrupt("enrolments", "missing or not a list");
  for (const auto& e : *list) {
    if (!e.is_object()) return corrupt("enrolments[]", "not an object");
    MCIMD_CHECK(only_known(e, "enrolments[]", {"operator", "device"}));
    // Into locals first: a statement expression that returns from inside a braced initializer
    // leaves the members built before it undestroyed (GCC), which leaks them.
    auto url = MCIMD_TRY(operator_of(e, "enrolments[]"));
    auto device = MCIMD_TRY(device_of(e, "enrolments[]"));
    state.enrolments.push_back(Enrolment{std::move(url), std::move(device)});
  }
  auto run = j.find("run");
  if (run == j.end()) return corrupt("run", "missing");
  if (!run->is_null()) state.run = MCIMD_TRY(run_from(*run));
  return state;
}

Status prepare_state_dir(const std::filesystem::path& dir) {
  auto owner = restrict_owned_dir(dir, /*follow_symlink=*/true);
  if (!owner && owner.error().code == Code::NotFound) {
    MCIMD_CHECK(make_private_dir(dir));
    owner = restrict_owned_dir(dir, /*follow_symlink=*/true);
  }
  if (!owner) return tl::unexpected(owner.error());
  if (*owner != ::geteuid())
    return fail(Code::StoreTampered, "state-dir " + dir.string() + " belongs to uid " + std::to_string(*owner) +
                                         ", not to the agent's uid " + std::to_string(::geteuid()));
  return {};
}

Result<AgentState> load_state(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / kStateFileName;
  StateFd f{::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)};
  if (f.fd < 0) {
    if (errno == ENOENT) return AgentState{};
    if (errno == ELOOP) return fail(Code::StoreTampered, file.string() + " is a symbolic link; refusing to follow it");
    return fail_errno("Failed to open " + file.string(), errno);
  }
  struct stat st {};
  if (::fstat(f.fd, &st) < 0) return fail_errno("Failed to stat " + file.string(), errno);
  if (!S_ISREG(st.st_mode)) return fail(Code::StoreTampered, file.string() + " is not a regular file");
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0)
    return fail(Code::StoreTampered, file.string() + " has mode " + octal_mode(st.st_mode) + " and owner uid " +
                                         std::to_string(st.st_uid) + "; only mode 0600 (or stricter) owned by uid " +
                                         std::to_string(::geteuid()) + " is trusted");
  if (static_cast<std::size_t>(st.st_size) > kMaxStateFileSize)
    return fail(Code::StoreCorrupt, file.string() + " is larger than " + std::to_string(kMaxStateFileSize) + " bytes");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t used = 0;
  while (used < text.size()) {
    ssize_t n = ::read(f.fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("Failed to read " + file.string(), errno);
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  text.resize(used);
  auto state = state_from_json(text);
  if (!state) return fail(Code::StoreCorrupt, file.string() + ": " + state.error().message);
  return state;
}

Status save_state(const std::filesystem::path& dir, const AgentState& state) {
  return write_file_atomic(dir / kStateFileName, std::string_view(to_json(state)), WriteOptions{0600});
}

}  // namespace mcimd::agent
