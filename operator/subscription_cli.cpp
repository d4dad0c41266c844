#include "operator/subscription_cli.hpp"

#include <chrono>

#include "operator/auc_store.hpp"
#include "operator/cli.hpp"
#include "operator/registry.hpp"

namespace mcimd::op {
namespace {

constexpr std::string_view kProgram = "mcim-operator";

}  // namespace

struct SubscriptionCommands::Options {
  CLI::App* add = nullptr;
  std::string registry, state, id, operator_id, iccid, imsi, k, opc, auc;
};

SubscriptionCommands::SubscriptionCommands(CLI::App& app) : o_(std::make_unique<Options>()) {
  auto& o = *o_;
  o.add = app.add_subcommand("subscription-add",
                             "Register an existing subscription (ICCID, IMSI, K, OPc) a subscriber can link a gateway to");
  o.add->add_option("--registry", o.registry, "registry connection string: sqlite:PATH or postgresql://…");
  o.add->add_option("--state", o.state, "the operator's state directory (registry sqlite:DIR/registry.db)");
  o.add->add_option("--id", o.id, "the subscription id subscribers name ([A-Za-z0-9._-]{1,64}; default: random)");
  o.add->add_option("--operator-id", o.operator_id, "this operator's id (MCC+MNC)")->required();
  o.add->add_option("--iccid", o.iccid, "ICCID, 18–20 digits")->required();
  o.add->add_option("--imsi", o.imsi, "IMSI, 6–15 digits")->required();
  o.add->add_option("--k", o.k, "K, 16 bytes hex")->required();
  o.add->add_option("--opc", o.opc, "OPc, 16 bytes hex")->required();
  o.add->add_option("--auc", o.auc, "the AuC directory mcim-operator serve reads (--auc)")->required();
}

SubscriptionCommands::~SubscriptionCommands() = default;

std::vector<std::string> SubscriptionCommands::names() const { return {o_->add->get_name()}; }

std::optional<int> SubscriptionCommands::run(std::ostream& out, std::ostream& err) {
  auto& o = *o_;
  if (!o.add->parsed()) return std::nullopt;
  if (o.registry.empty() == o.state.empty())
    return option_error(err, "--registry", "give exactly one of --registry and --state");
  AucRecord record{o.iccid, o.imsi, {}, {}};
  auto k = secret_from_hex(o.k, "K", 16);
  if (!k) return option_error(err, "--k", k.error().message);
  auto opc = secret_from_hex(o.opc, "OPc", 16);
  if (!opc) return option_error(err, "--opc", opc.error().message);
  wipe(o.k.data(), o.k.size());
  wipe(o.opc.data(), o.opc.size());
  record.k = std::move(*k);
  record.opc = std::move(*opc);

  auto registry = o.state.empty() ? Registry::open(o.registry) : Registry::open_state_dir(o.state, /*create=*/true);
  if (!registry) {
    err << kProgram << ": Failed to open the registry: " << code_name(registry.error().code) << ": "
        << registry.error().message << '\n';
    return kExitFailure;
  }
  SubscriptionSpec spec;
  if (!o.id.empty()) spec.id = o.id;
  spec.operator_id = o.operator_id;
  spec.iccid = o.iccid;
  spec.imsi = o.imsi;
  const auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  // The AuC first: a subscription the registry offers always has its keys.
  if (auto written = write_auc_record(o.auc, record); !written) {
    err << kProgram << ": Failed to write the AuC record: " << code_name(written.error().code) << ": "
        << written.error().message << '\n';
    return written.error().code == Code::InvalidArgument ? kExitUsage : kExitFailure;
  }
  auto created = registry->create_subscription(spec, now);
  if (!created) {
    std::error_code ec;
    std::filesystem::remove(o.auc / std::filesystem::path(o.iccid + ".json"), ec);
    err << kProgram << ": Failed to register the subscription: " << code_name(created.error().code) << ": "
        << created.error().message << '\n';
    return created.error().code == Code::InvalidArgument ? kExitUsage : kExitFailure;
  }
  out << created->id << '\n';
  return kExitOk;
}

}  // namespace mcimd::op
