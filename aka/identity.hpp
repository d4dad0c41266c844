#pragma once
// The identities a subscriber gives WLAN access networks (TS 23.003 §19.3.2 and §14.2): the
// network access identifier <IMSI>@wlan.mnc<MNC>.mcc<MCC>.3gppnetwork.org, with a two-digit MNC
// written with a leading zero (mnc001 for MNC 01), and the permanent identity of EAP-SIM,
// EAP-AKA and EAP-AKA', that NAI behind the method's prefix (RFC 4186 §4.2.1.3, RFC 4187
// §4.1.1.6, RFC 9048 §3.3):
//
//   0<IMSI>@wlan.mnc<MNC>.mcc<MCC>.3gppnetwork.org   EAP-AKA   (1 for EAP-SIM, 6 for EAP-AKA')
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace mcimd::aka {

enum class EapMethod { Sim, Aka, AkaPrime };

const char* method_name(EapMethod m);  // "EAP-SIM", "EAP-AKA", "EAP-AKA'"

// The first method of a network's `eap` value as wpa_supplicant's GET_NETWORK prints it
// (method names separated by spaces, e.g. "AKA' AKA") that the bridge serves; nullopt when it
// names none of SIM, AKA and AKA' (the network's identity is not the MCIM's).
std::optional<EapMethod> first_sim_method(std::string_view eap_methods);

// The NAI. The MNC is two or three digits, and the IMSI does not say which (it is in the SIM's
// EF_AD). `mnc_length` gives it; without it, an operator id of five or six digits that begins the
// IMSI (mcimd's default: MCC+MNC) tells it. InvalidArgument for an IMSI that is not 6 to 15
// digits, an MNC length other than 2 or 3, or no way to tell the length (the message says to give
// it with --mnc-length).
[[nodiscard]] Result<std::string> network_access_identifier(std::string_view imsi, std::string_view operator_id,
                                                            std::optional<int> mnc_length);
// The method's prefix, then the NAI; the same errors.
[[nodiscard]] Result<std::string> permanent_identity(EapMethod method, std::string_view imsi,
                                                     std::string_view operator_id, std::optional<int> mnc_length);

}  // namespace mcimd::aka
