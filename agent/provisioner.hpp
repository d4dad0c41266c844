#pragma once
// One provisioning run (TR 33.812 §5.1.3.5) between the operator and mcimd:
//
//   enrol, once per operator and device:  GetEndorsement → POST /v1/enrolments →
//                                         ActivateCredential → POST /v1/enrolments/activate → [saved]
//   provision:                            POST /v1/sessions → [saved] RequestPackage → POST /v1/packages →
//                                         [saved] InstallPackage → [saved] POST /v1/receipts → [saved]
//
// The state file (state.hpp) is written at each [saved] point, so a run cut short resumes where
// decide_resume() says:
//   a session opened, not expired      → RequestPackage and POST /v1/packages for it; when the
//                                         operator no longer takes the session (it answered it
//                                         already: Replayed, Expired, NotFound, InvalidState), a new one
//   a session opened and expired       → a new session
//   a package received, not installed  → InstallPackage the same text again (mcimd answers a package
//                                         it already installed with a fresh receipt and changes
//                                         nothing); when mcimd no longer knows the request's nonce
//                                         (Replayed) or the package expired, a new session
//   a receipt not yet accepted         → POST it again
//   done                               → nothing, unless asked to start again
// Transient failures are retried (retry.hpp); refusals end the run with the refusal's name.
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "agent/failure.hpp"
#include "agent/http.hpp"
#include "agent/mcimd_link.hpp"
#include "agent/retry.hpp"
#include "agent/state.hpp"

namespace mcimd::agent {

struct RunOptions {
  std::string operator_url;  // normalised
  std::optional<std::string> subscription;
  std::filesystem::path state_dir;
  std::string ek_type = "ecc";
  bool again = false;  // discard the previous run's state, finished or not, and provision anew
  RetryPolicy retries;
  // Wall-clock time, for session expiry; the system clock when empty.
  std::function<protocol::Timestamp()> now;
  // Test seam: called after each save of the state file with what was just recorded ("enrolled",
  // "session", "package", "installed", "done"). A test throws from it to stop the run there, as a
  // power cut would, and runs again on the state left behind.
  std::function<void(std::string_view)> after_save;
};

struct RunReport {
  bool already_provisioned = false;  // a finished run for this operator was found; nothing was done
  RunState run;                      // at Step::Done
};

class Provisioner {
 public:
  // Progress lines ("package pkg-12 received") go to `progress`.
  Provisioner(HttpClient& http, McimdLink& mcimd, RetryClock& clock, std::ostream& progress)
      : http_(http), mcimd_(mcimd), clock_(clock), progress_(progress) {}

  [[nodiscard]] Outcome<RunReport> run(const RunOptions& options);

 private:
  struct Run;
  HttpClient& http_;
  McimdLink& mcimd_;
  RetryClock& clock_;
  std::ostream& progress_;
};

}  // namespace mcimd::agent
