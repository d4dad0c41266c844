#include "agent/cli.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <ostream>

#include "agent/config.hpp"
#include "agent/provisioner.hpp"

namespace mcimd::agent {

namespace {

using nlohmann::json;

constexpr const char* kExitStatusHelp =
    "Exit status:\n"
    "  0  provisioned, already provisioned, or --at-boot with provision-at-boot false\n"
    "  1  any other failure (state directory, a malformed answer, an unfinished run for another operator)\n"
    "  2  bad command line or configuration (including a client key others can read)\n"
    "  3  mcimd refused (its error name is printed: SignatureInvalid, Replayed, NotAuthorized, ...)\n"
    "  4  the operator refused (its error name is printed), or it refused the TLS client certificate\n"
    "  5  the operator's TLS certificate does not verify against ca-bundle (UntrustedServer)\n"
    "  6  the operator stayed unreachable or busy through every retry\n"
    "  7  mcimd stayed unreachable or busy through every retry\n"
    "Progress goes to standard error; with --json one result object is printed on standard output.\n";

struct Options {
  std::string config = kDefaultConfigPath;
  std::string operator_url;
  std::string subscription;
  std::string bus_address;
  bool json = false;
  bool at_boot = false;
  bool again = false;
};

std::string_view party_name(Party p) {
  switch (p) {
    case Party::Agent: return "agent";
    case Party::Operator: return "operator";
    case Party::Mcimd: return "mcimd";
  }
  return "agent";
}

std::string_view kind_name(FailureKind k) {
  switch (k) {
    case FailureKind::Local: return "local";
    case FailureKind::Refused: return "refused";
    case FailureKind::Transient: return "gave-up";
    case FailureKind::Untrusted: return "untrusted";
    case FailureKind::Malformed: return "malformed";
  }
  return "local";
}

class Reporter {
 public:
  Reporter(const Options& o, std::ostream& out, std::ostream& err) : o_(o), out_(out), err_(err) {}

  int failure(const Failure& f) {
    const int code = exit_code_for(f);
    err_ << "mcimd-agent: Failed to provision: " << f.describe() << "\n";
    emit({{"result", "failed"},
          {"error", code_name(f.error.code)},
          {"message", f.error.message},
          {"party", party_name(f.party)},
          {"kind", kind_name(f.kind)},
          {"exit_code", code}});
    return code;
  }

  int skipped(const std::string& why) {
    err_ << why << "\n";
    emit({{"result", "skipped"}, {"reason", why}});
    return kExitOk;
  }

  int done(const RunReport& report) {
    const RunState& r = report.run;
    if (report.already_provisioned)
      err_ << "already provisioned: package " << (r.package_id.empty() ? "(unnamed)" : r.package_id) << " installed as "
           << r.profile << " from " << r.operator_url << " (--again provisions anew)\n";
    emit({{"result", report.already_provisioned ? "already-provisioned" : "provisioned"},
          {"operator", r.operator_url},
          {"device", r.device},
          {"package_id", r.package_id},
          {"profile", r.profile},
          {"exit_code", kExitOk}});
    return kExitOk;
  }

 private:
  void emit(json fields) {
    if (!o_.json) return;
    json line = {{"format", "mcimd-agent-result-1"}};
    line.update(fields);
    out_ << line.dump() << "\n" << std::flush;
  }

  const Options& o_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace

int run(int argc, char** argv, std::ostream& out, std::ostream& err) {
  Options o;
  CLI::App app{"mcimd-agent: fetch an MCIM package from an operator over HTTPS and hand it to mcimd over D-Bus."};
  app.name("mcimd-agent");
  app.add_option("--config", o.config, "Configuration file (YAML)")->capture_default_str();
  app.add_option("--operator", o.operator_url, "Operator base URL (https://...), instead of operator-url");
  app.add_option("--subscription", o.subscription, "Existing subscription to join, instead of subscription");
  app.add_option("--bus-address", o.bus_address,
                 "D-Bus address of mcimd instead of the system bus (which honours DBUS_SYSTEM_BUS_ADDRESS)");
  app.add_flag("--json", o.json, "Print one JSON result object on standard output at the end");
  app.add_flag("--at-boot", o.at_boot, "Started at boot: do nothing unless provision-at-boot is true");
  app.add_flag("--again", o.again, "Set the previous run aside, finished or not, and provision anew");
  app.set_version_flag("--version", "mcimd-agent " MCIMD_AGENT_VERSION);
  app.footer(kExitStatusHelp);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? kExitOk : kExitUsage;
  }
  Reporter report(o, out, err);

  auto config = load_agent_config(o.config);
  if (!config) return report.failure(Failure{Party::Agent, FailureKind::Local, config.error()});
  if (o.at_boot && !config->provision_at_boot)
    return report.skipped("provision-at-boot is false in " + o.config + ": nothing to do");
  if (!o.operator_url.empty()) {
    auto url = normalise_operator_url(o.operator_url);
    if (!url) return report.failure(Failure{Party::Agent, FailureKind::Local, Error{Code::ConfigError, "--operator: " + url.error().message}});
    config->operator_url = *url;
  }
  if (!o.subscription.empty()) {
    if (!is_protocol_id(o.subscription))
      return report.failure(Failure{Party::Agent, FailureKind::Local,
                                    Error{Code::ConfigError, "--subscription: '" + o.subscription +
                                                                 "' is not 1 to 64 of A-Z a-z 0-9 . _ -"}});
    config->subscription = o.subscription;
  }
  if (Status runnable = check_runnable(*config); !runnable)
    return report.failure(Failure{Party::Agent, FailureKind::Local, runnable.error()});

  HttpOptions http_options;
  if (!config->system_ca) http_options.tls.ca_bundle = config->ca_bundle;
  http_options.tls.client_certificate = config->client_certificate;
  http_options.tls.client_key = config->client_key;
  http_options.connect_timeout = config->connect_timeout;
  http_options.timeout = config->timeout;
  auto http = HttpClient::create(http_options);
  if (!http) return report.failure(Failure{Party::Agent, FailureKind::Local, http.error()});

  RunOptions run_options;
  run_options.operator_url = config->operator_url;
  run_options.subscription = config->subscription;
  run_options.state_dir = config->state_dir;
  run_options.ek_type = config->ek_type;
  run_options.again = o.again;
  run_options.retries = config->retries;

  BusMcimd mcimd(o.bus_address.empty() ? std::nullopt : std::optional<std::string>(o.bus_address));
  Provisioner provisioner(*http, mcimd, system_retry_clock(), err);
  auto result = provisioner.run(run_options);
  if (!result) return report.failure(result.error());
  return report.done(*result);
}

}  // namespace mcimd::agent
