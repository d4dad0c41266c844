#include "operator/cli.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "operator/attest_cli.hpp"
#include "operator/auc.hpp"
#include "operator/eap_sim_db_cli.hpp"
#include "operator/key_options.hpp"
#include "operator/lifecycle_cli.hpp"
#include "operator/pcr_policy_cli.hpp"
#include "operator/provisioning_cli.hpp"
#include "operator/subscription_cli.hpp"

namespace mcimd::op {

namespace {

constexpr std::string_view kProgram = "mcim-operator";

struct MilenageCommand {
  KeyOptions keys;
  std::string rand, sqn, amf;
  bool json = false;
};

struct AutsCommand {
  KeyOptions keys;
  std::string rand, auts;
  bool json = false;
};

int usage_error(std::ostream& err, const Error& error) {
  err << kProgram << ": " << error.message << '\n';
  return kExitUsage;
}

// A report as one JSON object (--json) or as name: value lines.
template <class Report>
int print_report(std::ostream& out, const Report& report, bool json) {
  if (json)
    out << to_json(report).dump() << '\n';
  else
    out << format_text(report);
  return kExitOk;
}

int run_milenage(const MilenageCommand& cmd, std::ostream& out, std::ostream& err) {
  auto keys = cmd.keys.keys();
  if (!keys) return usage_error(err, keys.error());
  auto rand = fixed_from_hex<16>(cmd.rand, "--rand");
  if (!rand) return usage_error(err, rand.error());
  auto sqn = fixed_from_hex<6>(cmd.sqn, "--sqn");
  if (!sqn) return usage_error(err, sqn.error());
  auto amf = fixed_from_hex<2>(cmd.amf, "--amf");
  if (!amf) return usage_error(err, amf.error());

  auto report = compute_milenage(*keys, *rand, *sqn, *amf);
  if (!report) {
    err << kProgram << ": Failed to compute Milenage: " << report.error().describe() << '\n';
    return kExitFailure;
  }
  return print_report(out, *report, cmd.json);
}

int run_auts(const AutsCommand& cmd, std::ostream& out, std::ostream& err) {
  auto keys = cmd.keys.keys();
  if (!keys) return usage_error(err, keys.error());
  auto rand = fixed_from_hex<16>(cmd.rand, "--rand");
  if (!rand) return usage_error(err, rand.error());
  auto auts = fixed_from_hex<14>(cmd.auts, "--auts");
  if (!auts) return usage_error(err, auts.error());

  auto report = recover_sqn_ms(*keys, *rand, *auts);
  if (!report) {
    if (report.error().code == Code::MacFailure)
      err << kProgram << ": Failed to verify AUTS: MAC-S does not match (wrong K, OP/OPc or RAND, or a forged AUTS)\n";
    else
      err << kProgram << ": Failed to verify AUTS: " << report.error().describe() << '\n';
    return kExitFailure;
  }
  return print_report(out, *report, cmd.json);
}

int run_parsed(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"Reference operator for mcimd: plays the network side of 3GPP AKA (Milenage, TS 35.206) and "
               "enrols and validates devices (TR 33.812).",
               std::string(kProgram)};
  app.require_subcommand(1);

  MilenageCommand milenage;
  CLI::App* milenage_app = app.add_subcommand(
      "milenage", "Compute OPc, f1..f5* and AUTN for one challenge (TS 35.206, TS 33.102 §6.3.2)");
  milenage.keys.add_to(*milenage_app);
  milenage_app->add_option("--rand", milenage.rand, "RAND, 16 bytes hex")->required();
  milenage_app->add_option("--sqn", milenage.sqn, "SQN, 6 bytes hex")->required();
  milenage_app->add_option("--amf", milenage.amf, "AMF, 2 bytes hex")->required();
  milenage_app->add_flag("--json", milenage.json, "print one JSON object instead of name: value lines");

  AutsCommand auts;
  CLI::App* auts_app = app.add_subcommand(
      "auts", "Recover SQN_MS from AUTS after a synchronisation failure and check MAC-S (TS 33.102 §6.3.5)");
  auts.keys.add_to(*auts_app);
  auts_app->add_option("--rand", auts.rand, "RAND of the failed challenge, 16 bytes hex")->required();
  auts_app->add_option("--auts", auts.auts, "AUTS from the device, 14 bytes hex")->required();
  auts_app->add_flag("--json", auts.json, "print one JSON object instead of name: value lines");

  AttestationCommands attestation(app);
  PcrPolicyCommands pcr_policy(app);
  ProvisioningCommands provisioning(app);
  SubscriptionCommands subscriptions(app);
  LifecycleCommands lifecycle(app);
  EapSimDbCommands eap_sim_db(app);

  // CLI11 would only say "a subcommand is required" for a mistyped one: name it.
  if (argc >= 2 && argv[1][0] != '-') {
    std::vector<std::string> names{milenage_app->get_name(), auts_app->get_name()};
    for (auto& name : attestation.names()) names.push_back(std::move(name));
    for (auto& name : pcr_policy.names()) names.push_back(std::move(name));
    for (auto& name : provisioning.names()) names.push_back(std::move(name));
    for (auto& name : subscriptions.names()) names.push_back(std::move(name));
    for (auto& name : lifecycle.names()) names.push_back(std::move(name));
    for (auto& name : eap_sim_db.names()) names.push_back(std::move(name));
    const std::string_view first = argv[1];
    if (std::find(names.begin(), names.end(), first) == names.end()) {
      err << kProgram << ": unknown subcommand '" << first << "'; expected one of:";
      for (std::size_t i = 0; i < names.size(); ++i) err << (i ? ", " : " ") << names[i];
      err << '\n';
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints usage and succeeds; every other parse error is a usage error.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      app.exit(e, out, err);
      return kExitOk;
    }
    err << kProgram << ": " << e.what() << "\nRun with --help for more information.\n";
    return kExitUsage;
  }

  if (milenage_app->parsed()) return run_milenage(milenage, out, err);
  if (auts_app->parsed()) return run_auts(auts, out, err);
  if (auto code = attestation.run(out, err)) return *code;
  if (auto code = pcr_policy.run(out, err)) return *code;
  if (auto code = provisioning.run(out, err)) return *code;
  if (auto code = subscriptions.run(out, err)) return *code;
  if (auto code = lifecycle.run(out, err)) return *code;
  if (auto code = eap_sim_db.run(out, err)) return *code;
  err << kProgram << ": no subcommand given\n";
  return kExitUsage;
}

}  // namespace

int option_error(std::ostream& err, std::string_view option, const std::string& message) {
  err << kProgram << ": " << option << ": " << message << '\n';
  return kExitUsage;
}

int step_failed(std::ostream& err, std::string_view what, const Error& error) {
  err << kProgram << ": Failed to " << what << ": " << code_name(error.code) << ": " << error.message << '\n';
  return kExitFailure;
}

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  try {
    return run_parsed(argc, argv, out, err);
  } catch (const std::exception& e) {
    err << kProgram << ": Failed: " << e.what() << '\n';
    return kExitFailure;
  } catch (...) {
    err << kProgram << ": Failed: unknown error\n";
    return kExitFailure;
  }
}

}  // namespace mcimd::op
