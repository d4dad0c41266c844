#include "operator/lifecycle_cli.hpp"

#include <charconv>
#include <cstdio>
#include <chrono>
#include <cstdint>
#include <functional>

#include "attestation/lifecycle_check.hpp"
#include "attestation/verifier_tpm.hpp"
#include "common/file.hpp"
#include "operator/cli.hpp"
#include "operator/lifecycle_builder.hpp"
#include "operator/provisioning_steps.hpp"
#include "operator/rekey_cli.hpp"
#include "operator/signer_options.hpp"
#include "protocol/evidence.hpp"
#include "protocol/lifecycle.hpp"

namespace mcimd::op {
namespace {

constexpr std::size_t kMaxAkFile = 64u << 10;  // a TPM2B_PUBLIC, or an enrolment request with the EK's certificate
constexpr std::size_t kIdRandomBytes = 8;      // default ids: a prefix and 64 random bits in hex

// "7d", "12h", "30m": how long a signed document stays valid, from one minute to the longest
// devices accept (attestation::kMaxLifecycleLifetime).
std::optional<std::chrono::seconds> parse_lifetime(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data() || end + 1 != text.data() + text.size()) return std::nullopt;
  const uint64_t limit = std::chrono::seconds(attestation::kMaxLifecycleLifetime).count();
  uint64_t unit = 0;
  switch (*end) {
    case 'd': unit = 86400; break;
    case 'h': unit = 3600; break;
    case 'm': unit = 60; break;
    default: return std::nullopt;
  }
  if (value == 0 || value > limit / unit) return std::nullopt;
  return std::chrono::seconds(static_cast<int64_t>(value * unit));
}

// What release and command share: the signer, the device's profile, the counter, the validity
// and where the JWS goes.
struct SignedDocumentOptions {
  SignerOptions signing;
  std::string device, iccid, expires_in = "7d", id, out_file;
  uint64_t counter = 0;

  void add_to(CLI::App& app, std::string_view noun) {
    signing.add_to(app, std::string(noun) + "s", /*leaf_may_head_chain=*/true);
    app.add_option("--device", device, "the device: its AK name in lower-case hex")->required();
    app.add_option("--iccid", iccid, "the profile's ICCID, 18–20 digits")->required();
    app.add_option("--counter", counter, "the device's next lifecycle counter (above the last it accepted)")
        ->required();
    app.add_option("--expires-in", expires_in, "validity from now: Nd, Nh or Nm, at most 30d (default 7d)");
    app.add_option("--id", id, "the " + std::string(noun) + "'s id, [A-Za-z0-9._-]{1,64} (default: random)");
    app.add_option("--out", out_file, "file the JWS is written to")->required();
  }

  struct Window {
    protocol::Timestamp issued, expires;
  };

  // Signs the body `sign` makes for the validity window and id, and writes the JWS to --out.
  int run(std::string_view noun, std::string_view id_prefix,
          const std::function<Result<std::string>(const Window&, const std::string& id, const PolicySigner&)>& sign,
          std::ostream& out, std::ostream& err) const {
    const auto lifetime = parse_lifetime(expires_in);
    if (!lifetime) return option_error(err, "--expires-in", "a number and d, h or m (e.g. 7d), from 1m to 30d");
    auto signer = signing.load();
    if (!signer) return option_error(err, SignerOptions::option_of(signer.error()), signer.error().message);
    std::string name = id;
    if (name.empty()) {
      auto random = random_bytes(kIdRandomBytes);
      if (!random) return step_failed(err, "draw an id", random.error());
      name = std::string(id_prefix) + to_hex(*random);
    }
    const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    const Window window{now, now + *lifetime};
    auto jws = sign(window, name, *signer);
    // The checks before signing refuse only what was given on the command line.
    if (!jws && jws.error().code == Code::InvalidArgument) return option_error(err, noun, jws.error().message);
    if (!jws) return step_failed(err, "sign the " + std::string(noun), jws.error());
    if (auto written = write_file_atomic(out_file, *jws, {0644}); !written)
      return step_failed(err, "write " + out_file, written.error());
    out << noun << ' ' << name << " for device " << device << ", profile " << iccid << ", counter " << counter
        << ", valid until " << protocol::format_timestamp(window.expires) << ": " << out_file << '\n';
    return kExitOk;
  }
};

// The AK public area from a file: marshaled TPM2B_PUBLIC (tpm2_createak -u, tpm2_readpublic -o),
// or the device's enrolment request (mcimctl attest endorsement), which carries it.
Result<Bytes> read_ak_public(const std::string& path) {
  auto data = MCIMD_TRY(read_file(path, kMaxAkFile));
  if (!data.empty() && data.front() == '{') {
    auto request = protocol::enrolment_request_from_json({reinterpret_cast<const char*>(data.data()), data.size()});
    if (!request) return tl::unexpected(std::move(request).error());
    data = std::move(request->ak_public);
  }
  MCIMD_CHECK(attestation::parse_tpm_public(data));
  return data;
}

}  // namespace

struct LifecycleCommands::Options {
  CLI::App* release = nullptr;
  CLI::App* command = nullptr;
  CLI::App* verify_deletion = nullptr;
  CLI::App* rekey = nullptr;

  SignedDocumentOptions release_doc, command_doc;
  RekeyOptions rekey_options;
  std::string from, to, operator_id, kind;
  std::string ak, receipt, device, iccid, deleted_operator;
  bool json = false;

  int run_release(std::ostream& out, std::ostream& err);
  int run_command(std::ostream& out, std::ostream& err);
  int run_verify_deletion(std::ostream& out, std::ostream& err);
};

LifecycleCommands::LifecycleCommands(CLI::App& app) : o_(std::make_unique<Options>()) {
  auto& o = *o_;
  o.release = app.add_subcommand(
      "release", "Sign a release letting a device's profile move to another operator (change of subscription)");
  o.release_doc.add_to(*o.release, "release");
  o.release->add_option("--from", o.from, "the releasing operator: the profile's operator_id")->required();
  o.release->add_option("--to", o.to, "the operator the subscription moves to")->required();

  o.command = app.add_subcommand("command", "Sign a remote lifecycle command for a device's profile");
  o.command_doc.add_to(*o.command, "command");
  o.command->add_option("--operator", o.operator_id, "the profile's operator_id, whose signer this is")->required();
  o.command->add_option("--command", o.kind, "enable, disable, delete, fallback or restore")->required();

  o.verify_deletion = app.add_subcommand(
      "verify-deletion-receipt", "Check a device's deletion receipt with its enrolled AK and print what it confirms");
  auto* v = o.verify_deletion;
  v->add_option("--ak", o.ak, "the device's AK: TPM2B_PUBLIC (tpm2_readpublic -o) or its enrolment request JSON")
      ->required();
  v->add_option("--receipt", o.receipt, "the deletion receipt JSON (mcimd-deletion-receipt-1)")->required();
  v->add_option("--device", o.device, "the device expected: its AK name in lower-case hex")->required();
  v->add_option("--iccid", o.iccid, "the deleted profile's ICCID")->required();
  v->add_option("--operator", o.deleted_operator, "the deleted profile's operator_id")->required();
  v->add_flag("--json", o.json, "print the receipt's body as JSON instead of name: value lines");

  o.rekey = app.add_subcommand(
      "rekey", "Build a re-key package for a device's package request: new K and OPc for its installed profile");
  o.rekey_options.add_to(*o.rekey);
}

LifecycleCommands::~LifecycleCommands() = default;

std::vector<std::string> LifecycleCommands::names() const {
  return {o_->release->get_name(), o_->command->get_name(), o_->verify_deletion->get_name(), o_->rekey->get_name()};
}

std::optional<int> LifecycleCommands::run(std::ostream& out, std::ostream& err) {
  auto& o = *o_;
  if (o.release->parsed()) return o.run_release(out, err);
  if (o.command->parsed()) return o.run_command(out, err);
  if (o.verify_deletion->parsed()) return o.run_verify_deletion(out, err);
  if (o.rekey->parsed()) return o.rekey_options.run(out, err);
  return std::nullopt;
}

int LifecycleCommands::Options::run_release(std::ostream& out, std::ostream& err) {
  const auto& d = release_doc;
  return d.run(
      "release", "rel-",
      [&](const SignedDocumentOptions::Window& w, const std::string& id, const PolicySigner& signer) {
        protocol::ReleaseAuthorisation r{id, d.device, d.iccid, from, to, d.counter, w.issued, w.expires,
                                         protocol::ReleaseSigner::Operator};
        return sign_release(r, signer);
      },
      out, err);
}

int LifecycleCommands::Options::run_command(std::ostream& out, std::ostream& err) {
  const auto& d = command_doc;
  const auto command_kind = protocol::command_kind_from_name(kind);
  if (!command_kind) return option_error(err, "--command", "one of enable, disable, delete, fallback, restore");
  return d.run(
      "command", "cmd-",
      [&](const SignedDocumentOptions::Window& w, const std::string& id, const PolicySigner& signer) {
        protocol::OperatorCommand c{id, d.device, d.iccid, operator_id, *command_kind, d.counter, w.issued, w.expires};
        return sign_command(c, signer);
      },
      out, err);
}

int LifecycleCommands::Options::run_verify_deletion(std::ostream& out, std::ostream& err) {
  auto ak_public = read_ak_public(ak);
  if (!ak_public) return option_error(err, "--ak", ak_public.error().message);
  auto text = read_text_file(receipt, protocol::kMaxProvisioningMessageSize + 1);
  if (!text) return option_error(err, "--receipt", text.error().message);
  auto parsed = protocol::deletion_receipt_from_json(*text);
  if (!parsed) return option_error(err, "--receipt", parsed.error().message);

  auto body = verify_deletion_receipt(*parsed, *ak_public, ExpectedDeletion{device, iccid, deleted_operator});
  if (!body) return step_failed(err, "verify the deletion receipt", body.error());
  if (json) {
    out << protocol::to_json(*body) << '\n';
    return kExitOk;
  }
  char nv_index[16];
  std::snprintf(nv_index, sizeof nv_index, "0x%08x", static_cast<unsigned>(body->nv_index));
  out << "device: " << body->device << "\niccid: " << body->iccid << "\noperator: " << body->operator_id
      << "\nprofile: " << body->profile << "\nreason: " << protocol::wire_name(body->reason)
      << "\nnv_index: " << nv_index << "\nnv_value: " << body->nv_value << '\n';
  return kExitOk;
}

}  // namespace mcimd::op
