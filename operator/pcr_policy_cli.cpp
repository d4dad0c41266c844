#include "operator/pcr_policy_cli.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/c_handle.hpp"
#include "common/file.hpp"
#include "operator/cli.hpp"
#include "protocol/pcr_policy.hpp"

namespace mcimd::op {

namespace {

constexpr const char* kProgram = "mcim-operator";
using json = nlohmann::json;
using EvpPkey = CHandle<EVP_PKEY, EVP_PKEY_free>;
using Bio = CHandle<BIO, BIO_free>;

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

int failed(std::ostream& err, const std::string& what, const Error& e) {
  err << kProgram << ": Failed to " << what << ": " << e.describe() << '\n';
  return e.code == Code::InvalidArgument || e.code == Code::NotFound ? kExitUsage : kExitFailure;
}

// "sha256:7=<hex>" → bank, index, value.
Status add_pcr_argument(const std::string& arg, protocol::PcrValues& values) {
  auto colon = arg.find(':');
  auto equals = arg.find('=');
  if (colon == std::string::npos || equals == std::string::npos || equals < colon)
    return fail(Code::InvalidArgument, "--pcr '" + arg + "' is not BANK:INDEX=HEX");
  const std::string bank = arg.substr(0, colon);
  if (!values.values.empty() && bank != values.bank)
    return fail(Code::InvalidArgument, "--pcr: a policy binds one bank; got " + values.bank + " and " + bank);
  values.bank = bank;
  const std::string index_text = arg.substr(colon + 1, equals - colon - 1);
  unsigned index = 0;
  auto [end, ec] = std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
  if (index_text.empty() || ec != std::errc() || end != index_text.data() + index_text.size() || index > 23)
    return fail(Code::InvalidArgument, "--pcr '" + arg + "': '" + index_text + "' is not a PCR index 0-23");
  values.values[index] = MCIMD_TRY(from_hex(arg.substr(equals + 1), "--pcr " + bank + ":" + index_text));
  return {};
}

// What `tpm2_pcrread sha256:7,16` prints: a YAML mapping bank → {index: 0xHEX}.
Status add_pcrread_output(const std::string& path, const std::vector<unsigned>& only, protocol::PcrValues& values) {
  auto text = MCIMD_TRY(read_text_file(path, 256 * 1024));
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return fail(Code::InvalidArgument, path + ": not tpm2_pcrread output (a mapping of banks)");
    if (root.size() != 1)
      return fail(Code::InvalidArgument, path + ": a policy binds one bank; read one bank with tpm2_pcrread");
    for (const auto& bank : root) {
      values.bank = bank.first.Scalar();
      if (!bank.second.IsMap()) return fail(Code::InvalidArgument, path + ": bank " + values.bank + " lists no PCR");
      for (const auto& pcr : bank.second) {
        unsigned index = 0;
        const std::string key = pcr.first.Scalar();
        auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
        if (ec != std::errc() || end != key.data() + key.size() || index > 23)
          return fail(Code::InvalidArgument, path + ": '" + key + "' is not a PCR index 0-23");
        if (!only.empty() && std::find(only.begin(), only.end(), index) == only.end()) continue;
        values.values[index] = MCIMD_TRY(from_hex(pcr.second.Scalar(), path + " PCR " + key));
      }
    }
  } catch (const YAML::Exception& e) {
    return fail(Code::InvalidArgument, path + ": " + e.what());
  }
  return {};
}

}  // namespace

struct PcrPolicyCommands::Options {
  CLI::App* group = nullptr;
  CLI::App* keygen = nullptr;
  CLI::App* sign = nullptr;
  CLI::App* show = nullptr;
  std::string key, out, public_out, pcrread, policy, authority;
  std::vector<std::string> pcrs;
  std::vector<unsigned> only;
  bool json = false;
  bool allow_resettable = false;
};

PcrPolicyCommands::PcrPolicyCommands(CLI::App& app) : o_(std::make_unique<Options>()) {
  auto& o = *o_;
  o.group = app.add_subcommand("pcr-policy", "Sign PCR policies as the policy authority (PolicyAuthorize)");
  o.group->require_subcommand(1);
  o.keygen = o.group->add_subcommand("keygen", "Make a policy authority key (ECC P-256)");
  o.keygen->add_option("--out", o.out, "PEM private key to write (0600)")->required();
  o.keygen->add_option("--public-out", o.public_out, "PEM public key to write: what gateways configure");
  o.sign = o.group->add_subcommand("sign", "Approve PCR values: write a signed mcimd-pcr-policy-1 document");
  o.sign->add_option("--key", o.key, "The authority's PEM private key")->required();
  o.sign->add_option("--pcr", o.pcrs, "BANK:INDEX=HEX, once per PCR");
  o.sign->add_option("--pcrread", o.pcrread, "Values as `tpm2_pcrread BANK:LIST` prints them (YAML)");
  o.sign->add_option("--only", o.only, "With --pcrread: take only these PCR indices")->delimiter(',');
  o.sign->add_option("--out", o.out, "Where to write the policy (JSON)")->required();
  o.sign->add_flag("--allow-resettable-pcrs", o.allow_resettable,
                   "Sign values of PCR 16 or 23, which any process can reset without a reboot (demos, tests: use "
                   "a key of their own, never the production authority's)");
  o.show = o.group->add_subcommand("show", "Check a signed PCR policy and print what it approves");
  o.show->add_option("policy", o.policy, "The policy document")->required();
  o.show->add_option("--authority", o.authority, "Check it was signed by this PEM public key");
  o.show->add_flag("--json", o.json, "print one JSON object");
}

PcrPolicyCommands::~PcrPolicyCommands() = default;

std::vector<std::string> PcrPolicyCommands::names() const { return {o_->group->get_name()}; }

std::optional<int> PcrPolicyCommands::run(std::ostream& out, std::ostream& err) {
  auto& o = *o_;
  if (!o.group->parsed()) return std::nullopt;
  if (o.keygen->parsed()) {
    EvpPkey key(EVP_EC_gen("prime256v1"));
    if (!key) return failed(err, "make a P-256 key", Error{Code::Internal, "EVP_EC_gen failed"});
    Bio priv(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    SecureString pem;
    {
      std::string text = bio_text(priv.get());
      pem.assign(text.begin(), text.end());
      wipe(text.data(), text.size());
    }
    if (auto st = write_file_atomic(o.out, std::string_view(pem.data(), pem.size())); !st)
      return failed(err, "write " + o.out, st.error());
    if (!o.public_out.empty()) {
      Bio pub(BIO_new(BIO_s_mem()));
      PEM_write_bio_PUBKEY(pub.get(), key.get());
      if (auto st = write_file_atomic(o.public_out, bio_text(pub.get()), WriteOptions{0644}); !st)
        return failed(err, "write " + o.public_out, st.error());
    }
    auto authority = protocol::policy_authority_from_pem(std::string_view(pem.data(), pem.size()));
    if (!authority) return failed(err, "read the new key", authority.error());
    out << "Policy authority key written to " << o.out << " (name " << to_hex(authority->name) << ")\n";
    return kExitOk;
  }
  if (o.sign->parsed()) {
    protocol::PcrValues values;
    if (!o.pcrread.empty())
      if (auto st = add_pcrread_output(o.pcrread, o.only, values); !st) return failed(err, "read --pcrread", st.error());
    for (const auto& arg : o.pcrs)
      if (auto st = add_pcr_argument(arg, values); !st) return failed(err, "read --pcr", st.error());
    if (values.values.empty())
      return failed(err, "sign", Error{Code::InvalidArgument, "no PCR value given (--pcr or --pcrread)"});
    // The TPM honours whatever this key signs, on any OS that holds the blobs; the gateway's own
    // rules are a second line. PC Client Platform TPM Profile §4.6: 16 (debug) and 23
    // (application) are resettable at locality 0.
    for (unsigned resettable : {16u, 23u})
      if (values.values.count(resettable) && !o.allow_resettable)
        return failed(err, "sign",
                      Error{Code::InvalidArgument, "PCR " + std::to_string(resettable) +
                                                       " can be reset by any process without a reboot, so a policy "
                                                       "binding it binds nothing; --allow-resettable-pcrs to sign it "
                                                       "anyway (with a demo or test key)"});
    if (std::all_of(values.values.begin(), values.values.end(),
                    [](const auto& v) { return v.first == 16 || v.first == 23; }))
      return failed(err, "sign", Error{Code::InvalidArgument, "the policy binds no PCR that only a reboot resets"});
    auto key = read_text_file(o.key, 64 * 1024);
    if (!key) return failed(err, "read " + o.key, key.error());
    auto policy = protocol::sign_pcr_policy(*key, values);
    wipe(key->data(), key->size());
    if (!policy) return failed(err, "sign the PCR policy", policy.error());
    if (auto st = write_file_atomic(o.out, protocol::to_json(*policy), WriteOptions{0644}); !st)
      return failed(err, "write " + o.out, st.error());
    out << "PCR policy " << protocol::policy_id(*policy) << " written to " << o.out << '\n';
    return kExitOk;
  }
  auto text = read_text_file(o.policy, 64 * 1024);
  if (!text) return failed(err, "read " + o.policy, text.error());
  auto policy = protocol::signed_pcr_policy_from_json(*text);
  if (!policy) return failed(err, "read the PCR policy", policy.error());
  std::optional<bool> verified;
  if (!o.authority.empty()) {
    auto authority = protocol::load_policy_authority(o.authority);
    if (!authority) return failed(err, "read --authority", authority.error());
    auto st = protocol::verify_pcr_policy(*policy, *authority);
    verified = bool(st);
    if (!st) err << kProgram << ": " << st.error().describe() << '\n';
  }
  if (o.json) {
    json values = json::object();
    for (const auto& [index, value] : policy->pcrs.values) values[std::to_string(index)] = to_hex(value);
    json doc{{"id", protocol::policy_id(*policy)}, {"authority", to_hex(policy->authority)},
             {"bank", policy->pcrs.bank}, {"pcrs", values}};
    if (verified) doc["verified"] = *verified;
    out << doc.dump(2) << '\n';
  } else {
    out << "id: " << protocol::policy_id(*policy) << "\nauthority: " << to_hex(policy->authority) << '\n';
    for (const auto& [index, value] : policy->pcrs.values)
      out << policy->pcrs.bank << ':' << index << ": " << to_hex(value) << '\n';
    if (verified) out << "signature: " << (*verified ? "verified" : "NOT verified") << '\n';
  }
  return verified.value_or(true) ? kExitOk : kExitFailure;
}

}  // namespace mcimd::op
