#pragma once
// USIM-side authentication (TS 33.102 §6.3.3) and the GSM conversion functions (§6.8.1.2).
#include <optional>
#include <variant>

#include "aka/milenage.hpp"
#include "aka/sqn.hpp"

namespace mcimd::aka {

struct UmtsSuccess {
  Res res{};
  Block ck{};
  Block ik{};
  uint64_t sqn = 0;  // the SQN that was accepted; the caller persists the SqnArray then replies
};
struct UmtsSyncFailure {
  Auts auts{};
};
using UmtsOutcome = std::variant<UmtsSuccess, UmtsSyncFailure>;

// Checks, in order:
//  1. MAC-A (TS 33.102 §6.3.3): XMAC = f1(SQN, RAND, AMF) with SQN = (SQN ⊕ AK) ⊕ AK from AUTN,
//     compared in constant time; mismatch → MacFailure, `sqns` untouched.
//  2. SQN freshness (TS 33.102 §6.3.3, Annex C, SqnArray::acceptable): not acceptable →
//     UmtsSyncFailure with AUTS = SQN_MS ⊕ AK* ‖ MAC-S (AMF* = 0x0000), `sqns` untouched.
//  3. AMF separation bit (TS 33.102 Annex H) when the parameters require it: not set → AmfFailure,
//     `sqns` untouched.
// On success the SQN is recorded in `sqns` (in memory only: persisting is the caller's job, before
// it releases RES). Three cipher calls: TEMP; OUT2..OUT5; then OUT1 for MAC-A and OUT1 for MAC-S
// together (f1's input needs SQN, which is concealed by AK from OUT2). Cipher errors propagate.
[[nodiscard]] Result<UmtsOutcome> usim_authenticate(BlockCipher& k, const Block& opc, SqnArray& sqns,
                                                    const Rand& rand, const Autn& autn);

struct GsmTriplet {
  std::array<uint8_t, 4> sres{};
  std::array<uint8_t, 8> kc{};
};

// USIM in GSM context: f2, f3, f4 then c2 (SRES = XRES1⊕XRES2) and c3 (Kc = CK1⊕CK2⊕IK1⊕IK2),
// TS 33.102 §6.8.1.2. Two cipher calls.
[[nodiscard]] Result<GsmTriplet> gsm_authenticate(BlockCipher& k, const Block& opc, const Rand& rand);

GsmTriplet gsm_convert(const Res& xres, const Block& ck, const Block& ik);

}  // namespace mcimd::aka
