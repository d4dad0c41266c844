#pragma once
// wpa_supplicant's external SIM/USIM protocol on its control interface (network option
// external_sim=1). wpa_supplicant asks with an event, and is answered with a control command:
//
//   <3>CTRL-REQ-SIM-<id>:UMTS-AUTH:<RAND>:<AUTN> needed for SSID <ssid>        (EAP-AKA, AKA')
//   <3>CTRL-REQ-SIM-<id>:GSM-AUTH:<RAND1>:<RAND2>[:<RAND3>] needed for SSID <ssid>  (EAP-SIM)
//
//   CTRL-RSP-SIM-<id>:UMTS-AUTH:<IK>:<CK>:<RES>
//   CTRL-RSP-SIM-<id>:UMTS-AUTS:<AUTS>
//   CTRL-RSP-SIM-<id>:UMTS-FAIL            (any other answer makes the peer send
//                                           Authentication-Reject, RFC 4187 §6.3.1)
//   CTRL-RSP-SIM-<id>:GSM-AUTH:<Kc1>:<SRES1>:<Kc2>:<SRES2>[:<Kc3>:<SRES3>]
//   CTRL-RSP-SIM-<id>:GSM-FAIL
//
// A network block without an identity makes wpa_supplicant ask for one, and it takes the
// permanent identity (RFC 4187 §4.1.1.6, TS 23.003 §19.3.2) back:
//
//   <3>CTRL-REQ-IDENTITY-<id>:Identity needed for SSID <ssid>
//   CTRL-RSP-IDENTITY-<id>:0<IMSI>@wlan.mnc<MNC>.mcc<MCC>.3gppnetwork.org
//
// Everything is lower- or upper-case hex without separators. Every byte from the socket is
// untrusted: the parser accepts exactly these shapes and names what it refused, never quoting
// the input (a RAND does not belong in a log).
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::wpasim {

// RFC 4187 / TS 33.102 sizes.
inline constexpr std::size_t kRandSize = 16;
inline constexpr std::size_t kAutnSize = 16;
inline constexpr std::size_t kAutsSize = 14;
inline constexpr std::size_t kKeySize = 16;      // CK, IK
inline constexpr std::size_t kResMinSize = 4;    // TS 33.102 §6.3.1: RES is 32 to 128 bits
inline constexpr std::size_t kResMaxSize = 16;
inline constexpr std::size_t kKcSize = 8;        // TS 43.020
inline constexpr std::size_t kSresSize = 4;
// RFC 4186 §9.3: an EAP-SIM challenge carries two or three RANDs.
inline constexpr std::size_t kGsmMinRands = 2;
inline constexpr std::size_t kGsmMaxRands = 3;
// Longer events are refused before they are looked at (wpa_supplicant's own limit is 4096).
inline constexpr std::size_t kMaxEventSize = 4096;

struct UmtsChallenge {
  Bytes rand;  // 16 bytes
  Bytes autn;  // 16 bytes
};
struct GsmChallenge {
  std::vector<Bytes> rands;  // 2 or 3 × 16 bytes
};

// The network needs an identity (any network: the bridge answers only the EAP-AKA/AKA'/SIM ones).
struct IdentityQuestion {};

struct SimRequest {
  uint32_t network_id = 0;  // wpa_supplicant's network block id, echoed in the answer
  std::variant<UmtsChallenge, GsmChallenge, IdentityQuestion> challenge;
};

// One message received on an attached control socket. Answers nullopt for anything that is not
// a CTRL-REQ-SIM or CTRL-REQ-IDENTITY event (other events, command replies), so callers can pass
// every message. CTRL-REQ-IDENTITY-<id>: is read up to its network id and ':'; the text after it
// is not read.
// Checks, in order (each failure is InvalidArgument naming the part that is wrong):
//  - at most kMaxEventSize bytes, no NUL, CR or LF;
//  - an optional "<level>" prefix of one to two digits;
//  - "CTRL-REQ-SIM-", then a decimal network id of one to ten digits that fits in 31 bits;
//  - ":", then "UMTS-AUTH:" followed by exactly 32 + ":" + 32 hex digits, or "GSM-AUTH:"
//    followed by two or three groups of exactly 32 hex digits separated by ":";
//  - then the end of the message, or " needed for SSID " and anything (the SSID is not read).
[[nodiscard]] Result<std::optional<SimRequest>> parse_event(std::string_view message);

// The answers. Each checks the sizes it formats (InvalidArgument otherwise) and returns the
// whole control command; the ones that carry keys come back in wiped memory.
[[nodiscard]] Result<SecureString> format_umts_auth(uint32_t network_id, std::span<const uint8_t> res,
                                                    std::span<const uint8_t> ck, std::span<const uint8_t> ik);
[[nodiscard]] Result<std::string> format_umts_auts(uint32_t network_id, std::span<const uint8_t> auts);
std::string format_umts_fail(uint32_t network_id);
struct GsmTriplet {
  std::span<const uint8_t> sres;
  std::span<const uint8_t> kc;
};
// `expected_count` is the number of RANDs of the request: each needs its own answer.
[[nodiscard]] Result<SecureString> format_gsm_auth(uint32_t network_id, const std::vector<GsmTriplet>& triplets,
                                                   std::size_t expected_count);
std::string format_gsm_fail(uint32_t network_id);
// CTRL-RSP-IDENTITY-<id>:<identity>; InvalidArgument for an identity that is empty, longer than
// kMaxIdentitySize or has a character outside printable ASCII (a space or ':' included).
inline constexpr std::size_t kMaxIdentitySize = 253;  // RFC 7542 §2.2
[[nodiscard]] Result<std::string> format_identity(uint32_t network_id, std::string_view identity);

}  // namespace mcimd::wpasim
