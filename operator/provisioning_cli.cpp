#include "operator/provisioning_cli.hpp"

#include <csignal>
#include <fstream>

#include "attestation/policy.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "operator/cli.hpp"
#include "operator/registry.hpp"
#include "operator/server.hpp"

namespace mcimd::op {
namespace {

constexpr std::string_view kProgram = "mcim-operator";
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

int usage(std::ostream& err, std::string_view option, const std::string& message) {
  err << kProgram << ": " << option << ": " << message << '\n';
  return kExitUsage;
}
int failed(std::ostream& err, std::string_view what, const Error& e) {
  err << kProgram << ": Failed to " << what << ": " << code_name(e.code) << ": " << e.message << '\n';
  return kExitFailure;
}

}  // namespace

struct ProvisioningCommands::Options {
  CLI::App* serve = nullptr;
  std::string registry, state, operator_id, signer_key, signer_cert, tls_cert, tls_key, client_ca, address = "127.0.0.1",
      auc, policy, port_file, iccid_prefix = "8949";
  std::vector<std::string> signer_chain, ek_cas;
  int port = 8443;
  bool allow_uncertified_ek = false;
  unsigned session_minutes = 10, package_hours = 24;
};

ProvisioningCommands::ProvisioningCommands(CLI::App& app) : o_(std::make_unique<Options>()) {
  auto& o = *o_;
  o.serve = app.add_subcommand("serve", "Serve remote provisioning (enrolment, sessions, MCIM packages, install "
                                        "receipts) over HTTPS with client authentication, until SIGTERM or SIGINT");
  auto* s = o.serve;
  s->add_option("--registry", o.registry, "registry connection string: sqlite:PATH or postgresql://…");
  s->add_option("--state", o.state, "the operator's state directory (its registry is sqlite:DIR/registry.db)");
  s->add_option("--operator-id", o.operator_id, "this operator's id as packages name it (MCC+MNC, e.g. 00101)")
      ->required();
  s->add_option("--signer-key", o.signer_key, "PEM P-256 key that signs packages")->required();
  s->add_option("--signer-cert", o.signer_cert, "its PEM certificate (extendedKeyUsage documentSigning)")->required();
  s->add_option("--signer-chain", o.signer_chain, "PEM intermediates between it and the devices' anchor");
  s->add_option("--tls-cert", o.tls_cert, "PEM certificate chain the server presents")->required();
  s->add_option("--tls-key", o.tls_key, "its PEM private key")->required();
  s->add_option("--client-ca", o.client_ca, "PEM CA the agents' client certificates must chain to")->required();
  s->add_option("--listen", o.address, "address to listen on (default 127.0.0.1)");
  s->add_option("--port", o.port, "port (default 8443; 0 = any free port, see --port-file)");
  s->add_option("--port-file", o.port_file, "write the port listened on to this file once listening");
  s->add_option("--auc", o.auc, "directory of the subscriptions' AuC records (K, OPc), made 0700")->required();
  s->add_option("--policy", o.policy, "reference policy (YAML) platforms must satisfy to get a package");
  s->add_option("--ek-ca", o.ek_cas, "PEM CA bundle EK certificates must chain to at enrolment");
  s->add_flag("--allow-uncertified-ek", o.allow_uncertified_ek, "enrol EKs that have no certificate");
  s->add_option("--iccid-prefix", o.iccid_prefix, "first digits of new ICCIDs (default 8949)");
  s->add_option("--session-minutes", o.session_minutes, "lifetime of a provisioning session (default 10)");
  s->add_option("--package-hours", o.package_hours, "lifetime of a package (default 24)");
}

ProvisioningCommands::~ProvisioningCommands() = default;

std::vector<std::string> ProvisioningCommands::names() const { return {o_->serve->get_name()}; }

std::optional<int> ProvisioningCommands::run(std::ostream& out, std::ostream& err) {
  auto& o = *o_;
  if (!o.serve->parsed()) return std::nullopt;
  if (o.registry.empty() == o.state.empty()) return usage(err, "--registry", "give exactly one of --registry and --state");
  if (o.iccid_prefix.empty() || o.iccid_prefix.size() > 12 ||
      o.iccid_prefix.find_first_not_of("0123456789") != std::string::npos)
    return usage(err, "--iccid-prefix", "1–12 digits");
  if (o.operator_id.size() < 5 || o.operator_id.size() > 6 ||
      o.operator_id.find_first_not_of("0123456789") != std::string::npos)
    return usage(err, "--operator-id", "the operator's MCC+MNC: 5 or 6 digits");
  if (o.session_minutes == 0 || o.package_hours == 0) return usage(err, "--session-minutes", "lifetimes must be positive");

  OperatorServiceOptions so;
  so.operator_id = o.operator_id;
  std::vector<std::filesystem::path> chain(o.signer_chain.begin(), o.signer_chain.end());
  auto signer = load_policy_signer({o.signer_key, o.signer_cert, chain});
  if (!signer) return usage(err, "--signer-key", signer.error().message);
  so.package_signer = std::move(*signer);
  if (!o.policy.empty()) {
    auto text = read_text_file(o.policy);
    if (!text) return usage(err, "--policy", text.error().message);
    auto policy = attestation::parse_policy(*text);
    if (!policy) return usage(err, "--policy", policy.error().message);
    so.policy = std::move(*policy);
  }
  if (!o.ek_cas.empty()) {
    std::vector<std::filesystem::path> files(o.ek_cas.begin(), o.ek_cas.end());
    auto cas = attestation::CaBundle::load(files);
    if (!cas) return usage(err, "--ek-ca", cas.error().message);
    so.ek_cas = std::move(*cas);
  }
  so.allow_uncertified_ek = o.allow_uncertified_ek;
  so.auc_dir = o.auc;
  so.iccid_prefix = o.iccid_prefix;
  so.session_lifetime = std::chrono::minutes{o.session_minutes};
  so.package_lifetime = std::chrono::hours{o.package_hours};

  auto registry = o.state.empty() ? Registry::open(o.registry) : Registry::open_state_dir(o.state, /*create=*/true);
  if (!registry) return failed(err, "open the registry", registry.error());
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
    out << "Serving provisioning for operator " << o.operator_id << " on https://" << o.address << ":" << port
        << " (registry " << service.registry().description() << ")" << std::endl;
  });
  if (!served) return failed(err, "serve", served.error());
  out << "Stopped." << std::endl;
  return kExitOk;
}

}  // namespace mcimd::op
