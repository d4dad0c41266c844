#pragma once
// What to tell wpa_supplicant for one SIM request, given mcimd's USIM application.
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "dbus-api/client.hpp"
#include "wpa-sim/sim_request.hpp"

namespace mcimd::wpasim {

// The USIM the bridge asks: mcimd over D-Bus in the program, a stand-in in tests.
class Usim {
 public:
  virtual ~Usim() = default;
  virtual api::CallResult<api::UmtsAuthResult> umts_authenticate(const Bytes& rand, const Bytes& autn) = 0;
  virtual api::CallResult<std::vector<api::GsmAuthResult>> gsm_authenticate(const std::vector<Bytes>& rands) = 0;
  // The profile the answers come from (its IMSI and operator id make the permanent identity).
  virtual api::CallResult<api::ProfileProperties> subscriber() = 0;
};

struct Answer {
  SecureString command;  // the CTRL-RSP-... control command; empty: nothing is sent
  std::string summary;   // for the log: what was answered and why, never a key or a RAND
  bool failed = false;   // UMTS-FAIL / GSM-FAIL
};

// UMTS: RES/CK/IK → UMTS-AUTH; AUTS → UMTS-AUTS (TS 33.102 §6.3.5, the network resynchronises);
// any error (MacFailure, PlatformStateChanged, the bus...) or a malformed reply → UMTS-FAIL, so
// the peer sends Authentication-Reject instead of leaving the server waiting.
// GSM: one SRES/Kc per RAND → GSM-AUTH; anything else → GSM-FAIL.
// An identity question is answered by answer_identity (it needs the network's methods): here it
// gets no command.
Answer answer(const SimRequest& request, Usim& usim);

// The permanent identity for the network's method (`eap_methods`: its `eap` value from
// GET_NETWORK). nullopt when the network uses none of SIM, AKA, AKA' (its identity is not the
// MCIM's: somebody else answers). When the profile cannot be read or gives no identity, the
// answer has no command (there is no way to refuse an identity request; wpa_supplicant waits
// and times out) and says why. `mnc_length` as in permanent_identity.
std::optional<Answer> answer_identity(uint32_t network_id, std::string_view eap_methods, Usim& usim,
                                      std::optional<int> mnc_length);

}  // namespace mcimd::wpasim
