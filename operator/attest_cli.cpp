#include "operator/attest_cli.hpp"

#include <openssl/rand.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

#include "attestation/credential.hpp"
#include "attestation/policy.hpp"
#include "attestation/verifier.hpp"
#include "common/bytes.hpp"
#include "common/file.hpp"
#include "operator/cli.hpp"
#include "operator/enrolment.hpp"
#include "operator/policy_signing.hpp"
#include "operator/registry.hpp"
#include "operator/validation.hpp"
#include "protocol/evidence.hpp"
#include "protocol/quote_domain.hpp"

namespace mcimd::op {

namespace {

using nlohmann::ordered_json;
using attestation::Check;

constexpr std::string_view kProgram = "mcim-operator";
// A nonce of 32 random bytes (a SHA-256 digest's worth) makes guessing or repeating one
// hopeless; 16 bytes is the least the verifier accepts, 64 the most TPM2_Quote's
// qualifyingData carries for a SHA-512 key.
constexpr std::size_t kNonceSize = 32;
constexpr std::size_t kMinNonceSize = 16;
constexpr std::size_t kMaxSmallFile = 1u << 20;
constexpr unsigned kMaxValidityDays = 3650;

int usage(std::ostream& err, std::string_view option, const std::string& message) {
  err << kProgram << ": " << option << ": " << message << '\n';
  return kExitUsage;
}

int failed(std::ostream& err, std::string_view what, const Error& error) {
  err << kProgram << ": Failed to " << what << ": " << error.message << '\n';
  return kExitFailure;
}

// Reads a whole file given by `option`; a usage error naming the option otherwise.
std::optional<std::string> read_input(std::ostream& err, std::string_view option, const std::string& path,
                                      std::size_t max_size, int& exit_code) {
  auto text = read_text_file(path, max_size);
  if (!text) {
    exit_code = usage(err, option, text.error().message);
    return std::nullopt;
  }
  return std::move(*text);
}

Bytes as_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

Result<Bytes> parse_nonce(const std::string& hex) {
  auto nonce = MCIMD_TRY(from_hex(hex, "nonce"));
  if (nonce.size() < kMinNonceSize || nonce.size() > protocol::kMaxNonceSize)
    return fail(Code::InvalidArgument, "must be " + std::to_string(kMinNonceSize) + ".." +
                                           std::to_string(protocol::kMaxNonceSize) + " bytes of hex, not " +
                                           std::to_string(nonce.size()));
  return nonce;
}

ordered_json checks_json(const std::vector<Check>& checks) {
  ordered_json list = ordered_json::array();
  for (const auto& c : checks)
    list.push_back({{"name", c.name}, {"passed", c.passed}, {"status", attestation::outcome(c)}, {"reason", c.reason}});
  return list;
}

// One line per check: "pass  ", "FAIL  " or "SKIP  " (not checked) and the name and reason.
void print_checks_text(std::ostream& out, const std::vector<Check>& checks) {
  for (const auto& c : checks) {
    out << (!c.passed ? "FAIL  " : c.not_checked ? "SKIP  " : "pass  ") << c.name;
    if (!c.reason.empty()) out << ": " << c.reason;
    out << '\n';
  }
}

// The failure message on stderr: one line per failed check with its reason.
int refused(std::ostream& err, std::string_view what, const std::vector<Check>& checks) {
  err << kProgram << ": " << what << ":\n";
  for (const auto& c : checks)
    if (!c.passed) err << "  " << c.name << ": " << c.reason << '\n';
  return kExitFailure;
}

Result<attestation::CaBundle> load_cas(const std::vector<std::string>& files) {
  std::vector<std::filesystem::path> paths(files.begin(), files.end());
  return attestation::CaBundle::load(paths);
}

}  // namespace

struct AttestationCommands::Options {
  CLI::App* enroll = nullptr;
  CLI::App* enroll_finish = nullptr;
  CLI::App* challenge = nullptr;
  CLI::App* verify = nullptr;
  CLI::App* verify_report = nullptr;
  CLI::App* policy_sign = nullptr;
  CLI::App* policy_keygen = nullptr;
  CLI::App* qualifying_data = nullptr;

  std::string state, registry, request, out_file, out_tpm2_tools, secret, activation, device, evidence, nonce, policy,
      report, quote_message, quote_signature, policy_jws, key, cert, out_key, out_cert, subject, domain, payload_hex,
      payload_file;
  std::vector<std::string> cas, chain;
  unsigned days = 365;
  bool json = false;
  bool allow_uncertified_ek = false;

  // The registry --state (a state directory) or --registry (a connection string) names.
  Result<Registry> open_registry(bool create) const;
  // The exit code for a registry that did not open, after saying why: a usage error naming the
  // option for input that is wrong or names nothing, a failure otherwise.
  int registry_failed(std::ostream& err, const Error& error) const;

  int run_enroll(std::ostream& out, std::ostream& err);
  int run_enroll_finish(std::ostream& out, std::ostream& err);
  int run_challenge(std::ostream& out, std::ostream& err);
  int run_verify(std::ostream& out, std::ostream& err);
  int run_verify_report(std::ostream& out, std::ostream& err);
  int run_policy_sign(std::ostream& out, std::ostream& err);
  int run_policy_keygen(std::ostream& out, std::ostream& err);
  int run_qualifying_data(std::ostream& out, std::ostream& err);
};

AttestationCommands::AttestationCommands(CLI::App& app) : o_(std::make_unique<Options>()) {
  Options& o = *o_;
  auto json_flag = [&o](CLI::App* sub) {
    sub->add_flag("--json", o.json, "print one JSON object instead of text");
  };
  auto state_option = [&o](CLI::App* sub) {
    auto* state =
        sub->add_option("--state", o.state, "the operator's state directory; its registry is DIR/registry.db");
    auto* registry = sub->add_option("--registry", o.registry,
                                     "the operator's registry instead: sqlite:PATH or postgresql://… (libpq URI)");
    state->excludes(registry);
  };

  o.enroll = app.add_subcommand(
      "enroll", "Start enrolling a device: check its EK and AK, issue a TPM2_MakeCredential challenge");
  o.enroll->add_option("--request", o.request, "enrolment request JSON (mcimctl attest endorsement)")->required();
  state_option(o.enroll);
  o.enroll->add_option("--ca", o.cas, "TPM manufacturer CA bundle (PEM); the EK certificate must chain to it");
  o.enroll->add_flag("--allow-uncertified-ek", o.allow_uncertified_ek,
                     "enrol an EK that has no certificate (nothing vouches it is in a genuine TPM); recorded and "
                     "shown whenever the device is verified");
  o.enroll->add_option("--out", o.out_file, "write the challenge JSON here instead of stdout");
  o.enroll->add_option("--out-tpm2-tools", o.out_tpm2_tools,
                       "also write the challenge as tpm2_activatecredential -i reads it");
  json_flag(o.enroll);

  o.enroll_finish = app.add_subcommand(
      "enroll-finish", "Finish an enrolment with the secret the device's TPM released (TPM2_ActivateCredential)");
  state_option(o.enroll_finish);
  auto* secret = o.enroll_finish->add_option("--secret", o.secret, "the released secret, hex");
  auto* activation = o.enroll_finish->add_option("--activation", o.activation,
                                                 "JSON {\"secret\": hex} as mcimctl attest activate --json prints");
  secret->excludes(activation);
  o.enroll_finish->add_option("--device", o.device, "device id (hex AK name); default: any pending enrolment");
  json_flag(o.enroll_finish);

  o.challenge = app.add_subcommand("challenge", "Print a fresh random nonce (32 bytes hex) for a device to quote");
  json_flag(o.challenge);

  o.verify = app.add_subcommand("verify", "Validate an enrolled device's attestation evidence (remote validation)");
  state_option(o.verify);
  o.verify->add_option("--evidence", o.evidence, "evidence JSON (mcimd-evidence-1)")->required();
  o.verify->add_option("--nonce", o.nonce, "the nonce sent to the device, hex")->required();
  o.verify->add_option("--policy", o.policy, "reference policy YAML");
  o.verify->add_option("--ca", o.cas, "TPM manufacturer CA bundle (PEM); the EK certificate must chain to it");
  json_flag(o.verify);

  o.verify_report = app.add_subcommand(
      "verify-report", "Check a device's own verdict on a signed policy (semi-autonomous validation)");
  state_option(o.verify_report);
  o.verify_report->add_option("--report", o.report, "platform report JSON (mcimd-platform-report-1)")->required();
  o.verify_report->add_option("--quote-message", o.quote_message, "TPMS_ATTEST quoting the report")->required();
  o.verify_report->add_option("--quote-signature", o.quote_signature, "TPMT_SIGNATURE of the quote")->required();
  o.verify_report->add_option("--nonce", o.nonce, "the nonce sent to the device, hex")->required();
  o.verify_report->add_option("--policy-jws", o.policy_jws, "the signed policy sent to the device")->required();
  o.verify_report->add_option("--device", o.device, "device id (hex AK name); default: the enrolled signer");
  json_flag(o.verify_report);

  o.policy_sign = app.add_subcommand("policy-sign", "Sign a reference policy YAML as JWS ES256 with x5c");
  o.policy_sign->add_option("--policy", o.policy, "reference policy YAML")->required();
  o.policy_sign->add_option("--key", o.key, "EC P-256 private key (PEM)")->required();
  o.policy_sign->add_option("--cert", o.cert, "the key's certificate (PEM)")->required();
  o.policy_sign->add_option("--chain", o.chain, "intermediate certificates (PEM), issuer of the leaf first");
  o.policy_sign->add_option("--out", o.out_file, "write the JWS here instead of stdout");
  json_flag(o.policy_sign);

  o.policy_keygen = app.add_subcommand(
      "policy-keygen", "Make an EC P-256 key and a self-signed policy signing certificate (demonstrations, tests)");
  o.policy_keygen->add_option("--out-key", o.out_key, "private key file to create (PEM, 0600)")->required();
  o.policy_keygen->add_option("--out-cert", o.out_cert, "certificate file to write (PEM)")->required();
  o.policy_keygen->add_option("--subject", o.subject, "subject common name (CN=… or the name alone)")->required();
  o.policy_keygen->add_option("--days", o.days, "validity in days (default 365)");
  json_flag(o.policy_keygen);

  o.qualifying_data = app.add_subcommand(
      "qualifying-data",
      "Print the qualifying data mcimd quotes with: SHA-256(domain label, NUL, payload), for tpm2_checkquote -q");
  o.qualifying_data
      ->add_option("--domain", o.domain, "evidence (payload: the nonce), report (the report's bytes), "
                                         "install-receipt or deletion-receipt")
      ->required();
  auto* hex = o.qualifying_data->add_option("--payload-hex", o.payload_hex, "the payload, hex");
  auto* file = o.qualifying_data->add_option("--payload-file", o.payload_file, "the payload, a file's bytes");
  hex->excludes(file);
  json_flag(o.qualifying_data);
}

AttestationCommands::~AttestationCommands() = default;

std::vector<std::string> AttestationCommands::names() const {
  return {o_->enroll->get_name(),        o_->enroll_finish->get_name(), o_->challenge->get_name(),
          o_->verify->get_name(),        o_->verify_report->get_name(), o_->policy_sign->get_name(),
          o_->policy_keygen->get_name(), o_->qualifying_data->get_name()};
}

std::optional<int> AttestationCommands::run(std::ostream& out, std::ostream& err) {
  Options& o = *o_;
  if (o.enroll->parsed()) return o.run_enroll(out, err);
  if (o.enroll_finish->parsed()) return o.run_enroll_finish(out, err);
  if (o.challenge->parsed()) return o.run_challenge(out, err);
  if (o.verify->parsed()) return o.run_verify(out, err);
  if (o.verify_report->parsed()) return o.run_verify_report(out, err);
  if (o.policy_sign->parsed()) return o.run_policy_sign(out, err);
  if (o.policy_keygen->parsed()) return o.run_policy_keygen(out, err);
  if (o.qualifying_data->parsed()) return o.run_qualifying_data(out, err);
  return std::nullopt;
}

Result<Registry> AttestationCommands::Options::open_registry(bool create) const {
  if (!registry.empty()) return Registry::open(registry, RegistryOptions{.create = create});
  if (state.empty()) return fail(Code::InvalidArgument, "--state or --registry is required");
  return Registry::open_state_dir(state, create);
}

int AttestationCommands::Options::registry_failed(std::ostream& err, const Error& error) const {
  if (error.code == Code::InvalidArgument || error.code == Code::NotFound)
    return usage(err, registry.empty() ? "--state" : "--registry", error.message);
  return failed(err, "open the registry", error);
}

// --- enroll ---------------------------------------------------------------------------------------

int AttestationCommands::Options::run_enroll(std::ostream& out, std::ostream& err) {
  int code = kExitOk;
  auto text = read_input(err, "--request", request, protocol::kMaxDocumentSize, code);
  if (!text) return code;
  auto req = protocol::enrolment_request_from_json(*text);
  if (!req) return usage(err, "--request", req.error().message);
  EnrolmentOptions options;
  options.allow_uncertified_ek = allow_uncertified_ek;
  if (!cas.empty()) {
    auto bundle = load_cas(cas);
    if (!bundle) return usage(err, "--ca", bundle.error().message);
    options.ek_cas = std::move(*bundle);
  }

  auto opened = open_registry(/*create=*/true);
  if (!opened) return registry_failed(err, opened.error());
  auto started = start_enrolment(*opened, *req, options);
  if (!started) return failed(err, "start the enrolment", started.error());

  if (!started->ok) {
    if (json)
      out << ordered_json{{"device", started->device}, {"ok", false}, {"checks", checks_json(started->checks)}}.dump(2)
          << '\n';
    else
      print_checks_text(out, started->checks);
    return refused(err, "enrolment refused", started->checks);
  }

  const std::string document = protocol::to_json(started->challenge);
  if (!out_tpm2_tools.empty()) {
    auto written = write_file_atomic(out_tpm2_tools, attestation::to_tpm2_tools_credential(started->challenge),
                                     WriteOptions{.mode = 0644});
    if (!written) return failed(err, "write " + out_tpm2_tools, written.error());
  }
  if (out_file.empty()) {
    // stdout carries the challenge document itself, for the device.
    out << document << '\n';
    err << kProgram << ": device " << started->device << ": challenge issued, awaiting activation\n";
    return kExitOk;
  }
  auto written = write_file_atomic(out_file, document + "\n", WriteOptions{.mode = 0644});
  if (!written) return failed(err, "write " + out_file, written.error());
  if (json)
    out << ordered_json{{"device", started->device}, {"state", "pending"}, {"challenge", out_file}}.dump(2) << '\n';
  else
    out << "device: " << started->device << "\nstate: pending\nchallenge: " << out_file << '\n';
  return kExitOk;
}

// --- enroll-finish --------------------------------------------------------------------------------

int AttestationCommands::Options::run_enroll_finish(std::ostream& out, std::ostream& err) {
  std::optional<SecureBytes> released;
  if (enroll_finish->count("--secret") > 0) {
    auto s = secret_from_hex(secret, "--secret", kCredentialSecretSize);
    if (!s) return usage(err, "--secret", s.error().message);
    released = std::move(*s);
  } else if (enroll_finish->count("--activation") > 0) {
    int code = kExitOk;
    auto text = read_input(err, "--activation", activation, kMaxSmallFile, code);
    if (!text) return code;
    auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    wipe(text->data(), text->size());
    if (!j.is_object() || !j.contains("secret") || !j["secret"].is_string())
      return usage(err, "--activation", "is not a JSON object with a \"secret\" hex string");
    auto s = secret_from_hex(j["secret"].get_ref<std::string&>(), "\"secret\"", kCredentialSecretSize);
    auto& secret_text = j["secret"].get_ref<std::string&>();
    wipe(secret_text.data(), secret_text.size());
    if (!s) return usage(err, "--activation", s.error().message);
    released = std::move(*s);
  } else {
    return usage(err, "--secret", "--secret or --activation is required");
  }
  std::optional<std::string> only;
  if (enroll_finish->count("--device") > 0) {
    if (!from_hex(device, "--device")) return usage(err, "--device", "is not a hex device id");
    only = device;
  }

  auto opened = open_registry(/*create=*/false);
  if (!opened) return registry_failed(err, opened.error());
  auto id = finish_enrolment(*opened, *released, only);
  if (!id) {
    if (id.error().code == Code::NotAuthorized || id.error().code == Code::NotFound) {
      err << kProgram << ": " << id.error().message << '\n';
      return kExitFailure;
    }
    return failed(err, "finish the enrolment", id.error());
  }
  if (json)
    out << ordered_json{{"device", *id}, {"state", "enrolled"}}.dump(2) << '\n';
  else
    out << "device: " << *id << "\nstate: enrolled\n";
  return kExitOk;
}

// --- challenge ------------------------------------------------------------------------------------

int AttestationCommands::Options::run_challenge(std::ostream& out, std::ostream& err) {
  Bytes nonce(kNonceSize);
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1)
    return failed(err, "draw a nonce", Error{Code::Internal, "RAND_bytes: " + attestation::openssl_error(), {}});
  if (json)
    out << ordered_json{{"nonce", to_hex(nonce)}}.dump(2) << '\n';
  else
    out << to_hex(nonce) << '\n';
  return kExitOk;
}

// --- verify ---------------------------------------------------------------------------------------

int AttestationCommands::Options::run_verify(std::ostream& out, std::ostream& err) {
  auto challenge = parse_nonce(nonce);
  if (!challenge) return usage(err, "--nonce", challenge.error().message);
  int code = kExitOk;
  auto text = read_input(err, "--evidence", evidence, protocol::kMaxDocumentSize, code);
  if (!text) return code;
  auto ev = protocol::evidence_from_json(*text);
  if (!ev) return usage(err, "--evidence", ev.error().message);
  DeviceVerifyOptions options;
  options.nonce = std::move(*challenge);
  if (verify->count("--policy") > 0) {
    auto p = attestation::load_policy(policy);
    if (!p) return usage(err, "--policy", p.error().message);
    options.policy = std::move(*p);
  }
  if (!cas.empty()) {
    auto bundle = load_cas(cas);
    if (!bundle) return usage(err, "--ca", bundle.error().message);
    options.ek_cas = std::move(*bundle);
  }

  auto opened = open_registry(/*create=*/false);
  if (!opened) return registry_failed(err, opened.error());
  auto verified = verify_device(*opened, *ev, options);
  if (!verified) return failed(err, "verify the evidence", verified.error());

  const auto& r = verified->result;
  if (json) {
    ordered_json j{{"device", verified->device}, {"ok", r.ok}, {"checks", checks_json(r.checks)}};
    if (r.clock)
      j["clock"] = {{"clock", r.clock->clock},
                    {"reset_count", r.clock->reset_count},
                    {"restart_count", r.clock->restart_count},
                    {"safe", r.clock->safe}};
    out << j.dump(2) << '\n';
  } else {
    out << "device: " << verified->device << '\n';
    print_checks_text(out, r.checks);
    out << "verdict: " << (r.ok ? "trusted" : "refused") << '\n';
  }
  if (!r.ok) return refused(err, "verification failed", r.checks);
  return kExitOk;
}

// --- verify-report --------------------------------------------------------------------------------

int AttestationCommands::Options::run_verify_report(std::ostream& out, std::ostream& err) {
  ReportInputs in;
  auto challenge = parse_nonce(nonce);
  if (!challenge) return usage(err, "--nonce", challenge.error().message);
  in.nonce = std::move(*challenge);
  int code = kExitOk;
  auto report_text = read_input(err, "--report", report, protocol::kMaxDocumentSize, code);
  if (!report_text) return code;
  auto parsed = protocol::platform_report_from_json(*report_text);
  if (!parsed) return usage(err, "--report", parsed.error().message);
  in.report = std::move(*parsed);
  in.report_bytes = as_bytes(*report_text);
  auto message = read_input(err, "--quote-message", quote_message, protocol::kMaxTpmStructureSize, code);
  if (!message) return code;
  in.quote_message = as_bytes(*message);
  auto signature = read_input(err, "--quote-signature", quote_signature, protocol::kMaxTpmStructureSize, code);
  if (!signature) return code;
  in.quote_signature = as_bytes(*signature);
  auto jws = read_input(err, "--policy-jws", policy_jws, kMaxSmallFile, code);
  if (!jws) return code;
  if (auto p = policy_from_jws(*jws); !p) return usage(err, "--policy-jws", p.error().message);
  in.policy_jws = std::move(*jws);
  if (verify_report->count("--device") > 0) {
    if (!from_hex(device, "--device")) return usage(err, "--device", "is not a hex device id");
    in.device = device;
  }

  auto opened = open_registry(/*create=*/false);
  if (!opened) return registry_failed(err, opened.error());
  auto verified = op::verify_report(*opened, in);
  if (!verified) return failed(err, "verify the report", verified.error());

  const auto& r = *verified;
  if (json) {
    out << ordered_json{{"device", r.device},
                        {"ok", r.ok},
                        {"device_verdict", in.report.trusted ? "trusted" : "untrusted"},
                        {"checks", checks_json(r.checks)},
                        {"device_checks", [&] {
                           ordered_json list = ordered_json::array();
                           for (const auto& c : in.report.checks)
                             list.push_back({{"name", c.name}, {"passed", c.passed}, {"reason", c.reason}});
                           return list;
                         }()}}
               .dump(2)
        << '\n';
  } else {
    out << "device: " << r.device << '\n';
    out << "device verdict (informational, not used): " << (in.report.trusted ? "trusted" : "untrusted") << '\n';
    for (const auto& c : in.report.checks) {
      out << "  device " << (c.passed ? "pass  " : "FAIL  ") << c.name;
      if (!c.reason.empty()) out << ": " << c.reason;
      out << '\n';
    }
    print_checks_text(out, r.checks);
    out << "verdict: " << (r.ok ? "trusted" : "refused") << '\n';
  }
  if (!r.ok) return refused(err, "report verification failed", r.checks);
  return kExitOk;
}

// --- policy-sign ----------------------------------------------------------------------------------

int AttestationCommands::Options::run_policy_sign(std::ostream& out, std::ostream& err) {
  int code = kExitOk;
  auto yaml = read_input(err, "--policy", policy, kMaxSmallFile, code);
  if (!yaml) return code;
  PolicySignerFiles files{key, cert, {chain.begin(), chain.end()}};
  auto signer = load_policy_signer(files);
  if (!signer) {
    const std::string& m = signer.error().message;
    const std::string_view option = m.starts_with("key:") ? "--key" : m.starts_with("chain:") ? "--chain" : "--cert";
    return usage(err, option, m.substr(m.find(':') + 2));
  }
  auto jws = sign_policy(*yaml, *signer);
  if (!jws) {
    if (jws.error().code == Code::InvalidArgument) return usage(err, "--policy", jws.error().message);
    return failed(err, "sign the policy", jws.error());
  }
  auto digest = policy_digest(*jws);
  if (!digest) return failed(err, "hash the policy", digest.error());

  if (out_file.empty()) {
    out << *jws << '\n';
    return kExitOk;
  }
  // Exactly the compact serialization: the file's SHA-256 is the digest reports name.
  auto written = write_file_atomic(out_file, std::string_view(*jws), WriteOptions{.mode = 0644});
  if (!written) return failed(err, "write " + out_file, written.error());
  if (json)
    out << ordered_json{{"policy_jws", out_file}, {"policy_digest", to_hex(*digest)}}.dump(2) << '\n';
  else
    out << "policy_jws: " << out_file << "\npolicy_digest: " << to_hex(*digest) << '\n';
  return kExitOk;
}

// --- policy-keygen --------------------------------------------------------------------------------

int AttestationCommands::Options::run_policy_keygen(std::ostream& out, std::ostream& err) {
  std::string_view cn = subject;
  if (cn.starts_with("CN=") || cn.starts_with("cn=")) cn.remove_prefix(3);
  if (cn.empty()) return usage(err, "--subject", "the common name is empty");
  if (days == 0 || days > kMaxValidityDays)
    return usage(err, "--days", "must be 1.." + std::to_string(kMaxValidityDays));
  std::error_code ec;
  if (std::filesystem::exists(out_key, ec))
    return usage(err, "--out-key", out_key + " exists; refusing to replace a private key");

  auto made = make_policy_signing_certificate({std::string(cn), days});
  if (!made) {
    if (made.error().code == Code::InvalidArgument) return usage(err, "--subject", made.error().message);
    return failed(err, "make the signing certificate", made.error());
  }
  auto key_written = write_file_atomic(out_key, std::string_view(made->key_pem.data(), made->key_pem.size()),
                                       WriteOptions{.mode = 0600});
  if (!key_written) return failed(err, "write " + out_key, key_written.error());
  auto cert_written = write_file_atomic(out_cert, made->certificate_pem, WriteOptions{.mode = 0644});
  if (!cert_written) return failed(err, "write " + out_cert, cert_written.error());
  if (json)
    out << ordered_json{{"key", out_key}, {"certificate", out_cert}, {"subject", "CN=" + std::string(cn)}}.dump(2)
        << '\n';
  else
    out << "key: " << out_key << "\ncertificate: " << out_cert << "\nsubject: CN=" << cn << '\n';
  return kExitOk;
}

// --- qualifying-data ------------------------------------------------------------------------------

int AttestationCommands::Options::run_qualifying_data(std::ostream& out, std::ostream& err) {
  auto d = protocol::quote_domain_from_name(domain);
  if (!d) return usage(err, "--domain", "'" + domain + "' is not evidence, report, install-receipt or deletion-receipt");
  Bytes payload;
  if (qualifying_data->count("--payload-hex") > 0) {
    auto decoded = from_hex(payload_hex, "--payload-hex");
    if (!decoded) return usage(err, "--payload-hex", decoded.error().message);
    payload = std::move(*decoded);
  } else if (qualifying_data->count("--payload-file") > 0) {
    int code = kExitOk;
    auto text = read_input(err, "--payload-file", payload_file, protocol::kMaxDocumentSize, code);
    if (!text) return code;
    payload = as_bytes(*text);
  } else {
    return usage(err, "--payload-hex", "--payload-hex or --payload-file is required");
  }
  const std::string value = to_hex(protocol::qualifying_data(*d, payload));
  if (json)
    out << ordered_json{{"domain", domain}, {"label", protocol::label(*d)}, {"qualifying_data", value}}.dump(2)
        << '\n';
  else
    out << value << '\n';
  return kExitOk;
}

}  // namespace mcimd::op
