#include "aka/identity.hpp"

#include <algorithm>

namespace mcimd::aka {
namespace {

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

char prefix(EapMethod m) {
  switch (m) {
    case EapMethod::Sim: return '1';
    case EapMethod::Aka: return '0';
    case EapMethod::AkaPrime: return '6';
  }
  return '0';
}

}  // namespace

const char* method_name(EapMethod m) {
  switch (m) {
    case EapMethod::Sim: return "EAP-SIM";
    case EapMethod::Aka: return "EAP-AKA";
    case EapMethod::AkaPrime: return "EAP-AKA'";
  }
  return "EAP";
}

std::optional<EapMethod> first_sim_method(std::string_view eap_methods) {
  while (!eap_methods.empty()) {
    const std::size_t space = eap_methods.find(' ');
    const std::string_view name = eap_methods.substr(0, space);
    if (name == "AKA'") return EapMethod::AkaPrime;
    if (name == "AKA") return EapMethod::Aka;
    if (name == "SIM") return EapMethod::Sim;
    if (space == std::string_view::npos) break;
    eap_methods.remove_prefix(space + 1);
  }
  return std::nullopt;
}

Result<std::string> network_access_identifier(std::string_view imsi, std::string_view operator_id,
                                              std::optional<int> mnc_length) {
  if (imsi.size() < 6 || imsi.size() > 15 || !all_digits(imsi))
    return fail(Code::InvalidArgument, "The profile's IMSI is not 6 to 15 digits");
  int length = 0;
  if (mnc_length) {
    if (*mnc_length != 2 && *mnc_length != 3)
      return fail(Code::InvalidArgument, "An MNC is 2 or 3 digits, not " + std::to_string(*mnc_length));
    length = *mnc_length;
  } else if ((operator_id.size() == 5 || operator_id.size() == 6) && all_digits(operator_id) &&
             imsi.starts_with(operator_id)) {
    length = static_cast<int>(operator_id.size()) - 3;
  } else {
    return fail(Code::InvalidArgument,
                "The profile's operator id is not the MCC and MNC its IMSI begins with, so the MNC length is "
                "unknown: give it with --mnc-length");
  }
  if (imsi.size() < static_cast<std::size_t>(3 + length))
    return fail(Code::InvalidArgument, "The profile's IMSI is shorter than its MCC and MNC");
  const std::string_view mcc = imsi.substr(0, 3);
  const std::string_view mnc = imsi.substr(3, static_cast<std::size_t>(length));
  std::string identity(imsi);
  identity += "@wlan.mnc";
  if (length == 2) identity += '0';
  identity.append(mnc);
  identity += ".mcc";
  identity.append(mcc);
  identity += ".3gppnetwork.org";
  return identity;
}

Result<std::string> permanent_identity(EapMethod method, std::string_view imsi, std::string_view operator_id,
                                       std::optional<int> mnc_length) {
  return std::string(1, prefix(method)) + MCIMD_TRY(network_access_identifier(imsi, operator_id, mnc_length));
}

}  // namespace mcimd::aka
