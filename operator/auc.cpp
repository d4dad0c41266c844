#include "operator/auc.hpp"

#include <algorithm>

namespace mcimd::op {

namespace {

// TS 35.206 §3: K, OP and OPc are 128 bits.
constexpr std::size_t kKeySize = 16;

void add_line(std::string& out, std::string_view name, std::span<const uint8_t> value) {
  out += name;
  out += ": ";
  out += to_hex(value);
  out += '\n';
}

}  // namespace

Result<SubscriberKeys> SubscriberKeys::from_hex(const HexInput& input) {
  if (input.op && input.opc)
    return fail(Code::InvalidArgument, std::string(input.op_option) + " and " + std::string(input.opc_option) +
                                           " exclude each other: give one");
  if (!input.op && !input.opc)
    return fail(Code::InvalidArgument,
                std::string(input.op_option) + " or " + std::string(input.opc_option) + " is required");

  auto k = MCIMD_TRY(secret_from_hex(input.k, input.k_option, kKeySize));
  auto cipher = MCIMD_TRY(aka::OpenSslAes::create(k));
  aka::Block opc;
  if (input.opc) {
    opc = MCIMD_TRY(fixed_from_hex<kKeySize>(*input.opc, input.opc_option));
  } else {
    aka::Block op = MCIMD_TRY(fixed_from_hex<kKeySize>(*input.op, input.op_option));
    auto derived = aka::compute_opc(cipher, op);
    wipe(op.data(), op.size());
    if (!derived) return tl::unexpected(std::move(derived).error());
    opc = *derived;
  }
  SubscriberKeys keys(std::move(cipher), opc);
  wipe(opc.data(), opc.size());
  return keys;
}

SubscriberKeys::~SubscriberKeys() { wipe(opc_.data(), opc_.size()); }

Result<MilenageReport> compute_milenage(SubscriberKeys& keys, const aka::Rand& rand, const aka::Sqn& sqn,
                                        const aka::Amf& amf) {
  MilenageReport report;
  report.opc = keys.opc();
  report.outputs = MCIMD_TRY(aka::milenage(keys.k(), keys.opc(), rand, sqn, amf));
  report.autn = aka::build_autn(sqn, amf, report.outputs);
  return report;
}

std::string format_text(const MilenageReport& report) {
  const auto& o = report.outputs;
  std::string out;
  add_line(out, "opc", report.opc);
  add_line(out, "mac_a", o.mac_a);
  add_line(out, "mac_s", o.mac_s);
  add_line(out, "res", o.res);
  add_line(out, "ck", o.ck);
  add_line(out, "ik", o.ik);
  add_line(out, "ak", o.ak);
  add_line(out, "ak_star", o.ak_star);
  add_line(out, "autn", report.autn);
  return out;
}

nlohmann::ordered_json to_json(const MilenageReport& report) {
  const auto& o = report.outputs;
  return nlohmann::ordered_json{
      {"opc", to_hex(report.opc)}, {"mac_a", to_hex(o.mac_a)}, {"mac_s", to_hex(o.mac_s)},
      {"res", to_hex(o.res)},      {"ck", to_hex(o.ck)},       {"ik", to_hex(o.ik)},
      {"ak", to_hex(o.ak)},        {"ak_star", to_hex(o.ak_star)}, {"autn", to_hex(report.autn)},
  };
}

Result<AutsReport> recover_sqn_ms(SubscriberKeys& keys, const aka::Rand& rand, const aka::Auts& auts) {
  AutsReport report;
  report.sqn_ms = MCIMD_TRY(aka::verify_auts(keys.k(), keys.opc(), rand, auts));
  // TS 33.102 §6.3.3: AUTS = SQN_MS ⊕ AK* ‖ MAC-S; MAC-S is the verified tail.
  std::copy(auts.begin() + report.sqn_ms.size(), auts.end(), report.mac_s.begin());
  return report;
}

std::string format_text(const AutsReport& report) {
  std::string out;
  add_line(out, "sqn_ms", report.sqn_ms);
  add_line(out, "mac_s", report.mac_s);
  return out;
}

nlohmann::ordered_json to_json(const AutsReport& report) {
  return nlohmann::ordered_json{{"sqn_ms", to_hex(report.sqn_ms)}, {"mac_s", to_hex(report.mac_s)}};
}

}  // namespace mcimd::op
