#pragma once
// What to tell wpa_supplicant for one SIM request, given mcimd's USIM application.
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
};

struct Answer {
  SecureString command;  // the CTRL-RSP-SIM-... control command
  std::string summary;   // for the log: what was answered and why, never a key or a RAND
  bool failed = false;   // UMTS-FAIL / GSM-FAIL
};

// UMTS: RES/CK/IK → UMTS-AUTH; AUTS → UMTS-AUTS (TS 33.102 §6.3.5, the network resynchronises);
// any error (MacFailure, PlatformStateChanged, the bus...) or a malformed reply → UMTS-FAIL, so
// the peer sends Authentication-Reject instead of leaving the server waiting.
// GSM: one SRES/Kc per RAND → GSM-AUTH; anything else → GSM-FAIL.
Answer answer(const SimRequest& request, Usim& usim);

}  // namespace mcimd::wpasim
