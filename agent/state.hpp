#pragma once
// The agent's memory between runs, so a run cut short at any point (a power cut, a kill) resumes
// without asking the operator for a second package or losing a receipt. One JSON file,
// <state-dir>/state.json, 0600 in a 0700 directory of the agent's user, replaced atomically
// (write_file_atomic) after every step:
//
//   {"format":"mcimd-agent-state-1",
//    "enrolments":[{"operator":URL,"device":HEX}],          operators this device enrolled with
//    "run":null | {"step":"session"|"package"|"installed"|"done",
//                  "operator":URL,"device":HEX,"subscription":STR?,
//                  "session":STR,"session_expires":TIME,      the operator session the package is for
//                  "session_nonce":B64?,                      step session: N_o, to ask mcimd again
//                  "package_id":STR,                          as the package names itself ("" if it does not)
//                  "package":JWS?,                            step package: received, not installed
//                  "profile":PATH?,                           steps installed, done: mcimd's profile object
//                  "receipt":JSON?}}                          step installed: not yet accepted
//
// Nothing secret is kept: the package's key material is wrapped to this TPM's SRK, the receipt
// is public. Still, a state file another account could have written decides what the agent
// sends: one that is not ours and private is refused, not repaired.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::agent {

enum class Step {
  Session,    // the operator opened a session; RequestPackage and POST /v1/packages come next
  Package,    // the operator's package is saved; InstallPackage comes next
  Installed,  // mcimd installed it; the receipt is saved and goes to the operator next
  Done,       // the operator accepted the receipt
};
std::string_view to_string(Step step);

struct Enrolment {
  std::string operator_url;
  std::string device;
  bool operator==(const Enrolment&) const = default;
};

struct RunState {
  Step step = Step::Session;
  std::string operator_url;
  std::string device;
  std::optional<std::string> subscription;
  std::string session;
  std::string session_expires;
  std::string session_nonce;  // base64url; Step::Session only
  std::string package_id;
  std::string package;   // Step::Package only
  std::string profile;   // Step::Installed and Step::Done
  std::string receipt;   // Step::Installed only
  bool operator==(const RunState&) const = default;
};

struct AgentState {
  std::vector<Enrolment> enrolments;
  std::optional<RunState> run;  // nullopt: no provisioning started (or the last one was abandoned)
  bool enrolled(std::string_view operator_url, std::string_view device) const;
  bool operator==(const AgentState&) const = default;
};

inline constexpr const char* kStateFileName = "state.json";
// A package is at most 256 KiB (mcimd's InstallPackage limit) and the rest is small.
inline constexpr std::size_t kMaxStateFileSize = 1u << 20;

std::string to_json(const AgentState& state);
// Strict: an unknown or missing field, a wrong type, a step without what it needs → StoreCorrupt
// naming the field.
[[nodiscard]] Result<AgentState> state_from_json(std::string_view text);

// Creates the directory 0700 when absent. Refuses (StoreTampered) a directory owned by another
// uid; takes group and other access away from our own.
[[nodiscard]] Status prepare_state_dir(const std::filesystem::path& dir);
// The state in dir; an empty AgentState when there is none yet. Checks, in order: the file is
// not a symlink and is a regular file; it is ours and neither group nor others may access it
// (StoreTampered otherwise); it is at most kMaxStateFileSize; it parses (StoreCorrupt).
[[nodiscard]] Result<AgentState> load_state(const std::filesystem::path& dir);
// Replaces the state file atomically, 0600 (write_file_atomic: temp, fsync, rename, fsync dir).
[[nodiscard]] Status save_state(const std::filesystem::path& dir, const AgentState& state);

// What a run does first, given the state the last one left (decide_resume):
enum class Resume {
  Fresh,            // no run recorded (or --again): enrol if needed, open a session
  AlreadyDone,      // a finished run with this operator: nothing to do
  ReuseSession,     // a session opened and not expired: ask mcimd and the operator for its package
  NewSession,       // a session opened but expired by now: open another
  InstallPackage,   // a package received, not installed: InstallPackage the same text again
  SendReceipt,      // installed, the receipt not accepted: POST the same receipt again
  OtherOperator,    // an unfinished run with another operator: refused unless --again
};
std::string_view to_string(Resume resume);

struct ResumeContext {
  std::string operator_url;
  protocol::Timestamp now;
  bool again = false;
};
// The decision alone, without side effects: a finished run with another operator counts as no
// run (Fresh), a session whose expiry cannot be read as expired.
Resume decide_resume(const AgentState& state, const ResumeContext& context);

}  // namespace mcimd::agent
