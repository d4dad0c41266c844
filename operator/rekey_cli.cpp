#include "operator/rekey_cli.hpp"

#include <chrono>
#include <filesystem>
#include <limits>

#include "attestation/package_check.hpp"
#include "common/file.hpp"
#include "operator/auc_store.hpp"
#include "operator/cli.hpp"
#include "operator/package_builder.hpp"
#include "operator/provisioning_steps.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::op {
namespace {

// TS 35.206 §3: K and OPc are 128 bits.
constexpr std::size_t kKeySize = 16;
constexpr std::size_t kIdRandomBytes = 8;  // default ids: "rekey-" and 64 random bits in hex

// K or OPc from its option, the option's text wiped whether or not it parsed.
Result<SecureBytes> take_key(std::string& hex, std::string_view what) {
  auto key = secret_from_hex(hex, what, kKeySize);
  wipe(hex.data(), hex.size());
  return key;
}

}  // namespace

void RekeyOptions::add_to(CLI::App& app) {
  app.add_option("--request", request, "the device's package request (mcimctl package request)")->required();
  app.add_option("--iccid", iccid, "the installed profile's ICCID, 18–20 digits")->required();
  app.add_option("--imsi", imsi, "its IMSI, 6–15 digits")->required();
  app.add_option("--k", k, "the new K, 16 bytes hex")->required();
  app.add_option("--opc", opc, "the new OPc, 16 bytes hex")->required();
  app.add_option("--operator-id", operator_id, "this operator's id, the profile's operator_id (MCC+MNC)")
      ->required();
  signing.add_to(app, "packages");
  app.add_option("--package-id", package_id, "the package's id, [A-Za-z0-9._-]{1,64} (default: random)");
  app.add_option("--package-hours", package_hours, "lifetime of the package (default 24, at most 720: 30 days)");
  app.add_option("--out", out_file, "file the package (JWS) is written to")->required();
  app.add_option("--auc", auc, "AuC directory whose record of the ICCID gets the new K and OPc");
  app.footer("Offline, the request is checked only against the AK it carries: compare the device id this "
             "prints with your records before sending the package.");
}

int RekeyOptions::run(std::ostream& out, std::ostream& err) {
  McimCredentials mcim;
  mcim.iccid = iccid;
  mcim.imsi = imsi;
  auto new_k = take_key(k, "K");
  auto new_opc = take_key(opc, "OPc");
  if (!new_k) return option_error(err, "--k", new_k.error().message);
  if (!new_opc) return option_error(err, "--opc", new_opc.error().message);
  mcim.k = std::move(*new_k);
  mcim.opc = std::move(*new_opc);
  // Devices refuse a package valid for longer (docs/protocol.md, check 9).
  if (package_hours == 0 || std::chrono::hours{package_hours} > attestation::kMaxPackageLifetime)
    return option_error(err, "--package-hours", "from 1 to 720 (30 days, the longest devices accept)");

  auto text = read_text_file(request, protocol::kMaxDocumentSize);
  if (!text) return option_error(err, "--request", text.error().message);
  auto parsed = protocol::package_request_from_json(*text);
  if (!parsed) return option_error(err, "--request", parsed.error().message);
  const protocol::PackageRequest& req = *parsed;
  if (auto checked = check_package_request(req, req.evidence.ak_public, req.operator_nonce); !checked)
    return step_failed(err, "check the package request", checked.error());
  if (req.counter == std::numeric_limits<uint64_t>::max())
    return step_failed(err, "count the package", Error{Code::InvalidState, "the device's package counter is spent"});

  auto signer = signing.load();
  if (!signer) return option_error(err, SignerOptions::option_of(signer.error()), signer.error().message);
  PackageOrder order;
  order.package_id = package_id;
  if (order.package_id.empty()) {
    auto random = random_bytes(kIdRandomBytes);
    if (!random) return step_failed(err, "draw a package id", random.error());
    order.package_id = "rekey-" + to_hex(*random);
  }
  order.operator_id = operator_id;
  order.counter = req.counter + 1;
  order.issued = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  order.lifetime = std::chrono::hours{package_hours};
  order.rekey = true;
  auto built = build_package(req, mcim, order, *signer);
  // The request passed its checks: what build_package refuses now came from the command line
  // (an ICCID, IMSI, operator or package id the header format refuses), named by its field.
  if (!built && built.error().code == Code::InvalidArgument) return option_error(err, "package", built.error().message);
  if (!built) return step_failed(err, "build the re-key package", built.error());

  if (auto written = write_file_atomic(out_file, built->jws, {0644}); !written)
    return step_failed(err, "write " + out_file, written.error());
  if (!auc.empty()) {
    if (auto replaced = replace_auc_keys(auc, AucRecord{iccid, imsi, mcim.k, mcim.opc}); !replaced) {
      // Neither or both: no package goes out whose keys the network would not use.
      std::error_code ec;
      std::filesystem::remove(out_file, ec);
      if (replaced.error().code == Code::InvalidArgument) return option_error(err, "--imsi", replaced.error().message);
      return step_failed(err, "update the AuC record of " + iccid, replaced.error());
    }
  }
  const auto& h = built->header;
  out << "rekey package " << h.package_id << " for device " << h.device << ", profile " << h.iccid << " of operator "
      << h.operator_id << ", counter " << h.counter << ", valid until " << protocol::format_timestamp(h.expires)
      << ": " << out_file << '\n';
  if (!auc.empty()) out << "AuC record of " << h.iccid << ": new K and OPc\n";
  return kExitOk;
}

}  // namespace mcimd::op
