#pragma once
// Building blocks of Milenage (TS 35.206 §4.1) shared by the network side (milenage.cpp) and the
// USIM side (usim.cpp), which orders its cipher calls differently. Not part of the public API.
#include <cstddef>
#include <span>
#include <vector>

#include "aka/milenage.hpp"
#include "common/bytes.hpp"

namespace mcimd::aka::detail {

// Wipes a secret when the scope ends, however it ends.
template <class T>
class Scrub {
 public:
  explicit Scrub(T& value) : value_(value) {}
  ~Scrub() { wipe_value(); }
  Scrub(const Scrub&) = delete;
  Scrub& operator=(const Scrub&) = delete;

 private:
  void wipe_value() {
    if constexpr (requires { value_.data(); value_.size(); }) {
      wipe(value_.data(), value_.size() * sizeof(*value_.data()));
    } else {
      wipe(&value_, sizeof(T));
    }
  }
  T& value_;
};

Block xor_blocks(const Block& a, const Block& b);

// The OUTi selector of TS 35.206 §4.1: OUT1 = f1/f1*, OUT2 = f2/f5, OUT3 = f3, OUT4 = f4, OUT5 = f5*.
enum class Out { One = 1, Two = 2, Three = 3, Four = 4, Five = 5 };

// The cipher input for OUT1: TEMP ⊕ rot(IN1 ⊕ OPc, r1) ⊕ c1, IN1 = SQN ‖ AMF ‖ SQN ‖ AMF.
Block out1_input(const Block& temp, const Block& opc, const Sqn& sqn, const Amf& amf);
// The cipher input for OUT2..OUT5: rot(TEMP ⊕ OPc, ri) ⊕ ci.
Block out_input(const Block& temp, const Block& opc, Out which);
// OUTi = E_K(input) ⊕ OPc: the cipher's answer turned into OUTi in place.
void finish_out(Block& encrypted, const Block& opc);

// One cipher call that must answer with exactly as many blocks as it was given (Internal otherwise).
Result<std::vector<Block>> encrypt_exact(BlockCipher& k, std::span<const Block> blocks);
// TEMP = E_K(RAND ⊕ OPc): one cipher call.
Result<Block> compute_temp(BlockCipher& k, const Block& opc, const Rand& rand);

}  // namespace mcimd::aka::detail
