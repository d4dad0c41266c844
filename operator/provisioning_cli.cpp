#include "operator/provisioning_cli.hpp"

#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "attestation/package_check.hpp"
#include "attestation/policy.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "operator/batch.hpp"
#include "operator/cli.hpp"
#include "operator/registry.hpp"
#include "operator/server.hpp"
#include "operator/signer_options.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::op {
namespace {

constexpr std::string_view kProgram = "mcim-operator";
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

// Options serve and batch share: the registry, the operator, its signer and its policy.
struct IssuerOptions {
  std::string registry, state, operator_id, auc, policy, iccid_prefix = "8949";
  SignerOptions signing;
  unsigned package_hours = 24;

  void add_to(CLI::App& app) {
    app.add_option("--registry", registry, "registry connection string: sqlite:PATH or postgresql://…");
    app.add_option("--state", state, "the operator's state directory (its registry is sqlite:DIR/registry.db)");
    app.add_option("--operator-id", operator_id, "this operator's id as packages name it (MCC+MNC, e.g. 00101)")
        ->required();
    signing.add_to(app, "packages");
    app.add_option("--auc", auc, "directory of the subscriptions' AuC records (K, OPc), made 0700")->required();
    app.add_option("--policy", policy, "reference policy (YAML) platforms must satisfy to get a package");
    app.add_option("--iccid-prefix", iccid_prefix, "first digits of new ICCIDs (default 8949)");
    app.add_option("--package-hours", package_hours, "lifetime of a package (default 24, at most 720: 30 days)");
  }

  // A usage error's exit code once printed, else nullopt.
  std::optional<int> check(std::ostream& err) const {
    if (registry.empty() == state.empty())
      return option_error(err, "--registry", "give exactly one of --registry and --state");
    if (iccid_prefix.empty() || iccid_prefix.size() > 12 || iccid_prefix.find_first_not_of("0123456789") != std::string::npos)
      return option_error(err, "--iccid-prefix", "1–12 digits");
    if (operator_id.size() < 5 || operator_id.size() > 6 || operator_id.find_first_not_of("0123456789") != std::string::npos)
      return option_error(err, "--operator-id", "the operator's MCC+MNC: 5 or 6 digits");
    // Devices refuse a package valid for longer (docs/protocol.md, check 9).
    if (package_hours == 0 || std::chrono::hours{package_hours} > attestation::kMaxPackageLifetime)
      return option_error(err, "--package-hours", "from 1 to 720 (30 days, the longest devices accept)");
    return std::nullopt;
  }

  Result<PolicySigner> signer() const { return signing.load(); }

  Result<std::optional<attestation::ReferencePolicy>> reference_policy() const {
    if (policy.empty()) return std::optional<attestation::ReferencePolicy>();
    auto text = MCIMD_TRY(read_text_file(policy));
    return std::optional<attestation::ReferencePolicy>(MCIMD_TRY(attestation::parse_policy(text)));
  }

  Result<Registry> open_registry(std::size_t connections = RegistryOptions{}.max_connections) const {
    if (!state.empty()) return Registry::open_state_dir(state, /*create=*/true);
    RegistryOptions ro;
    ro.max_connections = connections;
    return Registry::open(registry, ro);
  }
};

// Progress on a terminal: the line rewritten in place; elsewhere (a log) only the final line.
void print_progress(std::ostream& err, const BatchProgress& p, bool final, bool tty) {
  if (tty) err << '\r' << format_progress(p) << "\x1b[K" << (final ? "\n" : "") << std::flush;
  else if (final) err << format_progress(p) << '\n' << std::flush;
}

}  // namespace

struct ProvisioningCommands::Options {
  CLI::App* serve = nullptr;
  CLI::App* batch = nullptr;
  IssuerOptions issuer, batch_issuer;
  std::string tls_cert, tls_key, client_ca, address = "127.0.0.1", port_file;
  std::vector<std::string> ek_cas;
  int port = 8443;
  bool allow_uncertified_ek = false;
  unsigned session_minutes = 10;
  std::string input, out_dir, job, results, locked_until;
  unsigned jobs = 0;
};

ProvisioningCommands::ProvisioningCommands(CLI::App& app) : o_(std::make_unique<Options>()) {
  auto& o = *o_;
  o.serve = app.add_subcommand("serve", "Serve remote provisioning (enrolment, sessions, MCIM packages, install "
                                        "receipts) over HTTPS with client authentication, until SIGTERM or SIGINT");
  auto* s = o.serve;
  o.issuer.add_to(*s);
  s->add_option("--tls-cert", o.tls_cert, "PEM certificate chain the server presents")->required();
  s->add_option("--tls-key", o.tls_key, "its PEM private key")->required();
  s->add_option("--client-ca", o.client_ca, "PEM CA the agents' client certificates must chain to")->required();
  s->add_option("--listen", o.address, "address to listen on (default 127.0.0.1)");
  s->add_option("--port", o.port, "port (default 8443; 0 = any free port, see --port-file)");
  s->add_option("--port-file", o.port_file, "write the port listened on to this file once listening");
  s->add_option("--ek-ca", o.ek_cas, "PEM CA bundle EK certificates must chain to at enrolment");
  s->add_flag("--allow-uncertified-ek", o.allow_uncertified_ek, "enrol EKs that have no certificate");
  s->add_option("--session-minutes", o.session_minutes, "lifetime of a provisioning session (default 10)");

  o.batch = app.add_subcommand(
      "batch", "Register the devices of a factory's enrolment records (CSV or YAML) and build an MCIM package for "
               "each, on every core; resumes an interrupted job; one result line per device");
  auto* b = o.batch;
  b->add_option("records", o.input, "enrolment records: .csv (header line; columns request, subscription, "
                                    "ek_public, ek_certificate) or .yaml (a list of maps with those keys)")
      ->required();
  o.batch_issuer.add_to(*b);
  b->add_option("--job", o.job, "the batch job's name in the registry: running it again resumes it")->required();
  b->add_option("--out", o.out_dir, "directory the packages are written to, as DEVICE.jws")->required();
  b->add_option("--results", o.results, "file the result lines are written to, one per record in input order")
      ->required();
  b->add_option("--jobs", o.jobs, "worker threads (default: one per core)");
  b->add_option("--locked-until", o.locked_until,
                "subsidy lock: the devices refuse to move these profiles to another operator before this time "
                "(RFC 3339 UTC, e.g. 2030-01-01T00:00:00Z)");
}

ProvisioningCommands::~ProvisioningCommands() = default;

std::vector<std::string> ProvisioningCommands::names() const { return {o_->serve->get_name(), o_->batch->get_name()}; }

std::optional<int> ProvisioningCommands::run(std::ostream& out, std::ostream& err) {
  auto& o = *o_;
  if (o.batch->parsed()) return run_batch(out, err);
  if (!o.serve->parsed()) return std::nullopt;
  const auto& is = o.issuer;
  if (auto code = is.check(err)) return *code;
  if (o.session_minutes == 0) return option_error(err, "--session-minutes", "lifetimes must be positive");

  OperatorServiceOptions so;
  so.operator_id = is.operator_id;
  auto signer = is.signer();
  if (!signer) return option_error(err, "--signer-key", signer.error().message);
  so.package_signer = std::move(*signer);
  auto policy = is.reference_policy();
  if (!policy) return option_error(err, "--policy", policy.error().message);
  so.policy = std::move(*policy);
  if (!o.ek_cas.empty()) {
    std::vector<std::filesystem::path> files(o.ek_cas.begin(), o.ek_cas.end());
    auto cas = attestation::CaBundle::load(files);
    if (!cas) return option_error(err, "--ek-ca", cas.error().message);
    so.ek_cas = std::move(*cas);
  }
  so.allow_uncertified_ek = o.allow_uncertified_ek;
  so.auc_dir = is.auc;
  so.iccid_prefix = is.iccid_prefix;
  so.session_lifetime = std::chrono::minutes{o.session_minutes};
  so.package_lifetime = std::chrono::hours{is.package_hours};

  auto registry = is.open_registry();
  if (!registry) return step_failed(err, "open the registry", registry.error());
  OperatorService service(std::move(*registry), std::move(so));

  ServerOptions server;
  server.address = o.address;
  server.port = o.port;
  server.certificate = o.tls_cert;
  server.key = o.tls_key;
  server.client_ca = o.client_ca;
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGPIPE, SIG_IGN);
  auto served = op::serve(service, server, g_stop, [&](int port) {
    if (!o.port_file.empty()) {
      if (auto w = write_file_atomic(o.port_file, std::to_string(port) + "\n", {0644}); !w)
        err << kProgram << ": cannot write --port-file: " << w.error().message << '\n';
    }
    out << "Serving provisioning for operator " << is.operator_id << " on https://" << o.address << ":" << port
        << " (registry " << service.registry().description() << ")" << std::endl;
  });
  if (!served) return step_failed(err, "serve", served.error());
  out << "Stopped." << std::endl;
  return kExitOk;
}

int ProvisioningCommands::run_batch(std::ostream& out, std::ostream& err) {
  const auto& o = *o_;
  const auto& is = o.batch_issuer;
  if (auto code = is.check(err)) return *code;
  if (o.job.empty() || o.job.size() > kMaxIdSize ||
      o.job.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != std::string::npos)
    return option_error(err, "--job", "a job name is 1–64 of [A-Za-z0-9._-]");
  std::optional<Timestamp> locked_until;
  if (!o.locked_until.empty()) {
    auto parsed = protocol::parse_timestamp(o.locked_until);
    if (!parsed) return option_error(err, "--locked-until", parsed.error().message);
    locked_until = *parsed;
  }
  auto records = load_enrolment_records(o.input);
  if (!records) return option_error(err, "records", records.error().message);
  auto signer = is.signer();
  if (!signer) return option_error(err, "--signer-key", signer.error().message);
  auto policy = is.reference_policy();
  if (!policy) return option_error(err, "--policy", policy.error().message);

  BatchOptions bo;
  bo.job = o.job;
  bo.out_dir = o.out_dir;
  bo.auc_dir = is.auc;
  bo.numbering = {is.operator_id, is.iccid_prefix};
  bo.operator_id = is.operator_id;
  bo.policy = std::move(*policy);
  bo.package_lifetime = std::chrono::hours{is.package_hours};
  bo.locked_until = locked_until;
  bo.workers = o.jobs ? o.jobs : std::max(1u, std::thread::hardware_concurrency());
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  bo.progress = [&err, tty](const BatchProgress& p, bool final) { print_progress(err, p, final, tty); };

  // A connection per worker, and one for the progress and the results.
  auto registry = is.open_registry(bo.workers + 1);
  if (!registry) return step_failed(err, "open the registry", registry.error());
  auto report = op::run_batch(*registry, *records, *signer, bo);
  if (!report) return step_failed(err, "run batch job " + o.job, report.error());

  std::string text;
  for (const auto& line : report->lines) text += line + "\n";
  if (auto w = write_file_atomic(o.results, text, {0644}); !w) return step_failed(err, "write the results", w.error());
  if (report->stopped) step_failed(err, "finish batch job " + o.job, *report->stopped);
  out << "Batch job " << o.job << ": " << report->ok << " ok, " << report->failed << " failed";
  if (report->unfinished) out << ", " << report->unfinished << " unfinished";
  out << "; results in " << o.results << std::endl;
  return report->failed || report->unfinished || report->stopped ? kExitFailure : kExitOk;
}

}  // namespace mcimd::op
