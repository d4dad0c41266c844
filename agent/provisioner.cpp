#include "agent/provisioner.hpp"

#include <chrono>
#include <variant>

#include "agent/operator_api.hpp"
#include "common/bytes.hpp"
#include "protocol/quote.hpp"

namespace mcimd::agent {

namespace {

// Refusals that condemn the package itself: installing it again can only be refused again.
bool condemns_package(Code code) {
  switch (code) {
    case Code::SignatureInvalid:
    case Code::UntrustedSigner:
    case Code::WrongDevice:
    case Code::Replayed:
    case Code::Expired:
    case Code::InvalidArgument:
    case Code::Unsupported:
    case Code::AlreadyExists:
      return true;
    default:
      return false;
  }
}

// The operator's answers to a package request for a session it no longer takes: answered
// already (a run stopped after POST /v1/packages, before the package was saved), expired, or
// forgotten.
bool session_gone(const Failure& f) {
  if (f.party != Party::Operator || f.kind != FailureKind::Refused) return false;
  switch (f.error.code) {
    case Code::Replayed:
    case Code::Expired:
    case Code::NotFound:
    case Code::InvalidState:
      return true;
    default:
      return false;
  }
}

bool refused_by(const Failure& f, Party party, std::initializer_list<Code> codes) {
  if (f.party != party || f.kind != FailureKind::Refused) return false;
  for (Code c : codes)
    if (f.error.code == c) return true;
  return false;
}

std::string named(const std::string& package_id) { return package_id.empty() ? "(unnamed)" : package_id; }

}  // namespace

struct Provisioner::Run {
  Provisioner& p;
  const RunOptions& o;
  OperatorApi op;
  AgentState state;

  Run(Provisioner& owner, const RunOptions& options) : p(owner), o(options), op(owner.http_, options.operator_url) {}

  void say(const std::string& line) { p.progress_ << line << "\n" << std::flush; }

  protocol::Timestamp now() const {
    if (o.now) return o.now();
    return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  }

  Outcome<void> save(std::string_view what) {
    if (Status saved = save_state(o.state_dir, state); !saved) return local_failure(saved.error());
    if (o.after_save) o.after_save(what);
    return {};
  }

  template <class T>
  Outcome<T> retried(std::string_view what, const std::function<Outcome<T>()>& attempt) {
    return with_retries<T>(o.retries, p.clock_, attempt, [&](const Failure& f, unsigned n, Millis wait) {
      say(std::string(what) + " failed: " + f.describe() + "; retrying in " + std::to_string(wait.count()) +
          " ms (attempt " + std::to_string(n + 1) + " of " + std::to_string(o.retries.attempts) + ")");
    });
  }

  Outcome<void> retried(std::string_view what, const std::function<Outcome<void>()>& attempt) {
    auto r = with_retries<std::monostate>(o.retries, p.clock_, [&]() -> Outcome<std::monostate> {
      MCIMD_CHECK(attempt());
      return std::monostate{};
    }, [&](const Failure& f, unsigned n, Millis wait) {
      say(std::string(what) + " failed: " + f.describe() + "; retrying in " + std::to_string(wait.count()) +
          " ms (attempt " + std::to_string(n + 1) + " of " + std::to_string(o.retries.attempts) + ")");
    });
    if (!r) return tl::unexpected(r.error());
    return {};
  }

  Outcome<void> enrol(const api::EndorsementData& endorsement, const std::string& device) {
    say("enrolling device " + device + " with " + o.operator_url + "...");
    protocol::EnrolmentRequest request{endorsement.ek_public, endorsement.ek_certificate, endorsement.ak_public};
    auto challenge = MCIMD_TRY(retried<protocol::CredentialChallenge>(
        "POST /v1/enrolments", [&] { return op.start_enrolment(request); }));
    auto secret = MCIMD_TRY(retried<SecureBytes>("ActivateCredential", [&] {
      return p.mcimd_.activate_credential(o.ek_type, challenge.credential_blob, challenge.encrypted_secret);
    }));
    MCIMD_CHECK(retried("POST /v1/enrolments/activate", [&] { return op.finish_enrolment(device, secret); }));
    say("enrolled");
    state.enrolments.push_back(Enrolment{o.operator_url, device});
    return save("enrolled");
  }

  // Enrols when needed, then opens a session and saves it: the run's first saved step.
  Outcome<void> open_session() {
    auto endorsement = MCIMD_TRY(retried<api::EndorsementData>(
        "GetEndorsement", [&] { return p.mcimd_.get_endorsement(o.ek_type); }));
    auto name = protocol::object_name(endorsement.ak_public);
    if (!name)
      return failed(Party::Mcimd, FailureKind::Malformed, Code::InvalidArgument,
                    "GetEndorsement answered an AK public area that does not parse: " + name.error().message);
    const std::string device = to_hex(*name);
    const bool recorded = state.enrolled(o.operator_url, device);
    if (!recorded) MCIMD_CHECK(enrol(endorsement, device));
    protocol::ProvisioningSessionRequest request{device, o.subscription};
    auto open = [&] {
      return retried<protocol::ProvisioningSession>("POST /v1/sessions", [&] { return op.open_session(request); });
    };
    auto session = open();
    if (!session && recorded && refused_by(session.error(), Party::Operator, {Code::NotFound})) {
      // The operator no longer knows the device (its registry was reset): enrol again, once.
      say("the operator does not know device " + device + " any more (" + session.error().describe() + ")");
      std::erase(state.enrolments, Enrolment{o.operator_url, device});
      MCIMD_CHECK(enrol(endorsement, device));
      session = open();
    }
    if (!session) return tl::unexpected(session.error());
    RunState run;
    run.step = Step::Session;
    run.operator_url = o.operator_url;
    run.device = device;
    run.subscription = o.subscription;
    run.session = session->session;
    run.session_expires = protocol::format_timestamp(session->expires);
    run.session_nonce = base64url_encode(session->nonce);
    say("session " + run.session + " opened, expires " + run.session_expires);
    state.run = std::move(run);
    return save("session");
  }

  // RequestPackage for the saved session, POST /v1/packages, and the package saved.
  Outcome<void> fetch_package() {
    RunState& run = *state.run;
    auto nonce = base64url_decode(run.session_nonce, "session nonce");
    if (!nonce) return local_failure(nonce.error());
    auto request = MCIMD_TRY(retried<std::string>(
        "RequestPackage", [&] { return p.mcimd_.request_package(run.session, *nonce); }));
    auto package = MCIMD_TRY(retried<std::string>("POST /v1/packages", [&] { return op.fetch_package(request); }));
    run.step = Step::Package;
    run.session_nonce.clear();
    run.package_id = package_id_of(package);
    run.package = std::move(package);
    say("package " + named(run.package_id) + " received");
    return save("package");
  }

  Outcome<void> install() {
    RunState& run = *state.run;
    auto installed = MCIMD_TRY(retried<InstalledPackage>(
        "InstallPackage", [&] { return p.mcimd_.install_package(run.package); }));
    run.step = Step::Installed;
    run.profile = installed.profile;
    run.receipt = installed.receipt;
    run.package.clear();
    say("installed as " + run.profile);
    return save("installed");
  }

  Outcome<void> deliver_receipt() {
    RunState& run = *state.run;
    MCIMD_CHECK(retried("POST /v1/receipts", [&] { return op.send_receipt(run.receipt); }));
    say("receipt accepted");
    run.step = Step::Done;
    run.receipt.clear();
    return save("done");
  }

  // Sets the previous run aside when it is not to be resumed; answers the report when there is
  // nothing to do.
  Outcome<std::optional<RunReport>> settle_previous() {
    const Resume resume = decide_resume(state, ResumeContext{o.operator_url, now(), o.again});
    if (!state.run) return std::nullopt;
    const RunState& run = *state.run;
    switch (resume) {
      case Resume::AlreadyDone:
        return RunReport{true, run};
      case Resume::OtherOperator:
        return failed(Party::Agent, FailureKind::Local, Code::InvalidState,
                      "an unfinished provisioning with " + run.operator_url + " is in " +
                          (o.state_dir / kStateFileName).string() +
                          ": run with that operator to finish it, or with --again to abandon it");
      case Resume::Fresh:
      case Resume::NewSession:
        if (o.again)
          say("starting again: the previous run (step " + std::string(to_string(run.step)) + ", package " +
              named(run.package_id) + ") is set aside");
        else if (resume == Resume::NewSession)
          say("session " + run.session + " expired at " + run.session_expires + ": opening a new one");
        state.run.reset();
        MCIMD_CHECK(save("reset"));
        return std::nullopt;
      case Resume::ReuseSession:
        say("resuming: session " + run.session + " with " + run.operator_url + " is open until " +
            run.session_expires);
        return std::nullopt;
      case Resume::InstallPackage:
      case Resume::SendReceipt:
        say("resuming: package " + named(run.package_id) + " from " + run.operator_url + " is " +
            (run.step == Step::Package ? "received, not installed" : "installed, its receipt not accepted"));
        return std::nullopt;
    }
    return std::nullopt;
  }

  // Forgets the run's session or package so the loop opens a new session.
  Outcome<void> set_aside(const std::string& why) {
    say(why);
    state.run.reset();
    return save("reset");
  }

  Outcome<RunReport> go() {
    if (Status dir = prepare_state_dir(o.state_dir); !dir) return local_failure(dir.error());
    auto loaded = load_state(o.state_dir);
    if (!loaded) return local_failure(loaded.error());
    state = std::move(*loaded);
    if (auto settled = MCIMD_TRY(settle_previous())) return *settled;

    // What an earlier run left may be refused as no longer current; what this run made may not:
    // a second refusal of something fresh ends the run instead of looping.
    bool inherited = state.run.has_value();
    for (;;) {
      if (!state.run) {
        MCIMD_CHECK(open_session());
        inherited = false;
      }
      if (state.run->step == Step::Session) {
        auto fetched = fetch_package();
        if (!fetched) {
          if (inherited && session_gone(fetched.error())) {
            MCIMD_CHECK(set_aside("the operator no longer takes session " + state.run->session + " (" +
                                  fetched.error().describe() + "): opening a new one"));
            continue;
          }
          return tl::unexpected(fetched.error());
        }
      }
      if (state.run->step == Step::Package) {
        auto installed = install();
        if (!installed) {
          const Failure& f = installed.error();
          if (inherited && refused_by(f, Party::Mcimd, {Code::Replayed, Code::Expired})) {
            MCIMD_CHECK(set_aside("mcimd no longer takes package " + named(state.run->package_id) + " (" +
                                  f.describe() + "): asking for a new one"));
            continue;
          }
          if (f.party == Party::Mcimd && f.kind == FailureKind::Refused && condemns_package(f.error.code)) {
            say("package " + named(state.run->package_id) + " discarded; the next run asks for a new one");
            state.run.reset();
            MCIMD_CHECK(save("reset"));
          }
          return tl::unexpected(f);
        }
      }
      if (state.run->step == Step::Installed) MCIMD_CHECK(deliver_receipt());
      return RunReport{false, *state.run};
    }
  }
};

Outcome<RunReport> Provisioner::run(const RunOptions& options) {
  Run run(*this, options);
  return run.go();
}

}  // namespace mcimd::agent
