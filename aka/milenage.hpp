#pragma once
// Milenage f1, f1*, f2–f5, f5* (TS 35.206) over a BlockCipher.
#include <array>
#include <cstdint>

#include "aka/block_cipher.hpp"

namespace mcimd::aka {

using Sqn = std::array<uint8_t, 6>;
using Amf = std::array<uint8_t, 2>;
using Rand = Block;
using Mac = std::array<uint8_t, 8>;
using Res = std::array<uint8_t, 8>;
using Ak = std::array<uint8_t, 6>;
using Autn = std::array<uint8_t, 16>;
using Auts = std::array<uint8_t, 14>;

// OPc = E_K(OP) ⊕ OP (TS 35.206 §4.1). One cipher call.
[[nodiscard]] Result<Block> compute_opc(BlockCipher& k, const Block& op);

// Everything Milenage yields for one (RAND, SQN, AMF); SQN and AMF feed f1 and f1* alike.
struct MilenageOutputs {
  Mac mac_a{};     // f1
  Mac mac_s{};     // f1*
  Res res{};       // f2
  Block ck{};      // f3
  Block ik{};      // f4
  Ak ak{};         // f5
  Ak ak_star{};    // f5*
};

// Two cipher calls (TEMP, then OUT1..OUT5 as one 5-block call). Cipher errors propagate; a cipher
// answering with the wrong number of blocks is an Internal error.
[[nodiscard]] Result<MilenageOutputs> milenage(BlockCipher& k, const Block& opc, const Rand& rand, const Sqn& sqn,
                                               const Amf& amf);

// TS 33.102 §6.3.2: AUTN = SQN ⊕ AK ‖ AMF ‖ MAC-A, from the outputs of milenage() for that SQN and AMF.
Autn build_autn(const Sqn& sqn, const Amf& amf, const MilenageOutputs& outputs);

// Network side (AuC): an authentication vector (TS 33.102 §6.3.2). AUTN = SQN⊕AK ‖ AMF ‖ MAC-A.
// Two cipher calls, as milenage().
struct AuthVector {
  Rand rand{};
  Res xres{};
  Block ck{};
  Block ik{};
  Autn autn{};
};
[[nodiscard]] Result<AuthVector> generate_vector(BlockCipher& k, const Block& opc, const Rand& rand, const Sqn& sqn,
                                                 const Amf& amf);

// Network side: recovers SQN_MS from AUTS and checks MAC-S (TS 33.102 §6.3.5, AMF* = 0x0000).
// MacFailure when MAC-S does not verify (constant-time compare). Three cipher calls: TEMP, OUT5 for
// AK*, then OUT1 for MAC-S (its input needs SQN_MS, which AK* conceals).
[[nodiscard]] Result<Sqn> verify_auts(BlockCipher& k, const Block& opc, const Rand& rand, const Auts& auts);

}  // namespace mcimd::aka
