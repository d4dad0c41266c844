#include "aka/milenage.hpp"

#include <algorithm>
#include <string>

#include "aka/milenage_blocks.hpp"

namespace mcimd::aka {

namespace detail {

namespace {

// TS 35.206 §4.1: rotation amounts r1..r5 = 64, 0, 32, 64, 96 bits, as whole bytes (indexed by Out;
// entry 0 unused).
constexpr std::size_t kRotationBytes[6] = {0, 64 / 8, 0, 32 / 8, 64 / 8, 96 / 8};
// TS 35.206 §4.1: constants c1..c5 = 0, 1, 2, 4, 8 in the least significant bits (last byte;
// indexed by Out, entry 0 unused).
constexpr uint8_t kConstantLastByte[6] = {0, 0x00, 0x01, 0x02, 0x04, 0x08};

// TS 35.206 §4.1: rot(x, r) cyclically rotates x by r bits towards the most significant bit.
Block rotate(const Block& x, std::size_t bytes) {
  Block out;
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = x[(i + bytes) % x.size()];
  return out;
}

Block apply_constant(Block x, Out which) {
  x.back() ^= kConstantLastByte[static_cast<int>(which)];
  return x;
}

}  // namespace

Block xor_blocks(const Block& a, const Block& b) {
  Block out;
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
  return out;
}

Block out1_input(const Block& temp, const Block& opc, const Sqn& sqn, const Amf& amf) {
  // TS 35.206 §4.1: IN1 = SQN[0..47] ‖ AMF[0..15] ‖ SQN[0..47] ‖ AMF[0..15].
  Block in1;
  std::copy(sqn.begin(), sqn.end(), in1.begin());
  std::copy(amf.begin(), amf.end(), in1.begin() + 6);
  std::copy(sqn.begin(), sqn.end(), in1.begin() + 8);
  std::copy(amf.begin(), amf.end(), in1.begin() + 14);
  Block masked = xor_blocks(in1, opc);
  Scrub scrub_masked(masked);
  Block rotated = rotate(masked, kRotationBytes[static_cast<int>(Out::One)]);
  Scrub scrub_rotated(rotated);
  return apply_constant(xor_blocks(temp, rotated), Out::One);
}

Block out_input(const Block& temp, const Block& opc, Out which) {
  Block masked = xor_blocks(temp, opc);
  Scrub scrub_masked(masked);
  return apply_constant(rotate(masked, kRotationBytes[static_cast<int>(which)]), which);
}

void finish_out(Block& encrypted, const Block& opc) {
  for (std::size_t i = 0; i < encrypted.size(); ++i) encrypted[i] ^= opc[i];
}

Result<std::vector<Block>> encrypt_exact(BlockCipher& k, std::span<const Block> blocks) {
  auto out = MCIMD_TRY(k.encrypt(blocks));
  if (out.size() != blocks.size()) {
    wipe(out.data(), out.size() * sizeof(Block));
    return fail(Code::Internal, "block cipher answered " + std::to_string(out.size()) + " blocks for " +
                                    std::to_string(blocks.size()));
  }
  return out;
}

Result<Block> compute_temp(BlockCipher& k, const Block& opc, const Rand& rand) {
  // TS 35.206 §4.1: TEMP = E_K(RAND ⊕ OPc).
  Block input[1] = {xor_blocks(rand, opc)};
  Scrub scrub_input(input);
  auto out = MCIMD_TRY(encrypt_exact(k, input));
  Scrub scrub_out(out);
  return out[0];
}

}  // namespace detail

using detail::Out;
using detail::Scrub;

Result<Block> compute_opc(BlockCipher& k, const Block& op) {
  // TS 35.206 §4.1: OPc = OP ⊕ E_K(OP).
  const Block input[1] = {op};
  auto out = MCIMD_TRY(detail::encrypt_exact(k, input));
  Scrub scrub_out(out);
  return detail::xor_blocks(out[0], op);
}

Result<MilenageOutputs> milenage(BlockCipher& k, const Block& opc, const Rand& rand, const Sqn& sqn, const Amf& amf) {
  Block temp = MCIMD_TRY(detail::compute_temp(k, opc, rand));
  Scrub scrub_temp(temp);

  // Second and last call: OUT1..OUT5 as one 5-block request (one TPM round trip).
  Block inputs[5] = {detail::out1_input(temp, opc, sqn, amf), detail::out_input(temp, opc, Out::Two),
                     detail::out_input(temp, opc, Out::Three), detail::out_input(temp, opc, Out::Four),
                     detail::out_input(temp, opc, Out::Five)};
  Scrub scrub_inputs(inputs);
  auto outs = MCIMD_TRY(detail::encrypt_exact(k, inputs));
  Scrub scrub_outs(outs);
  for (auto& out : outs) detail::finish_out(out, opc);
  const Block& out1 = outs[0];
  const Block& out2 = outs[1];

  // TS 35.206 §4.1: f1 = OUT1[0..63], f1* = OUT1[64..127], f5 = OUT2[0..47], f2 = OUT2[64..127],
  // f3 = OUT3, f4 = OUT4, f5* = OUT5[0..47].
  MilenageOutputs r;
  std::copy_n(out1.begin(), 8, r.mac_a.begin());
  std::copy_n(out1.begin() + 8, 8, r.mac_s.begin());
  std::copy_n(out2.begin(), 6, r.ak.begin());
  std::copy_n(out2.begin() + 8, 8, r.res.begin());
  r.ck = outs[2];
  r.ik = outs[3];
  std::copy_n(outs[4].begin(), 6, r.ak_star.begin());
  return r;
}

Autn build_autn(const Sqn& sqn, const Amf& amf, const MilenageOutputs& outputs) {
  Autn autn;
  for (std::size_t i = 0; i < sqn.size(); ++i) autn[i] = sqn[i] ^ outputs.ak[i];
  std::copy(amf.begin(), amf.end(), autn.begin() + sqn.size());
  std::copy(outputs.mac_a.begin(), outputs.mac_a.end(), autn.begin() + sqn.size() + amf.size());
  return autn;
}

Result<AuthVector> generate_vector(BlockCipher& k, const Block& opc, const Rand& rand, const Sqn& sqn,
                                   const Amf& amf) {
  auto out = MCIMD_TRY(milenage(k, opc, rand, sqn, amf));
  Scrub scrub_out(out);
  AuthVector v;
  v.rand = rand;
  v.xres = out.res;
  v.ck = out.ck;
  v.ik = out.ik;
  v.autn = build_autn(sqn, amf, out);
  return v;
}

Result<Sqn> verify_auts(BlockCipher& k, const Block& opc, const Rand& rand, const Auts& auts) {
  Block temp = MCIMD_TRY(detail::compute_temp(k, opc, rand));
  Scrub scrub_temp(temp);

  // AK* conceals SQN_MS, so OUT5 has to come before OUT1: three calls in all.
  Block out5_input[1] = {detail::out_input(temp, opc, Out::Five)};
  Scrub scrub_out5_input(out5_input);
  auto out5 = MCIMD_TRY(detail::encrypt_exact(k, out5_input));
  Scrub scrub_out5(out5);
  detail::finish_out(out5[0], opc);

  // TS 33.102 §6.3.3: AUTS = SQN_MS ⊕ AK* ‖ MAC-S.
  Sqn sqn_ms;
  for (std::size_t i = 0; i < sqn_ms.size(); ++i) sqn_ms[i] = auts[i] ^ out5[0][i];

  // TS 33.102 §6.3.3: MAC-S = f1*_K(SQN_MS ‖ RAND ‖ AMF*), AMF* = 0x0000.
  const Amf dummy_amf{};
  Block out1_in[1] = {detail::out1_input(temp, opc, sqn_ms, dummy_amf)};
  Scrub scrub_out1_in(out1_in);
  auto out1 = MCIMD_TRY(detail::encrypt_exact(k, out1_in));
  Scrub scrub_out1(out1);
  detail::finish_out(out1[0], opc);

  const std::span<const uint8_t> expected(out1[0].data() + 8, 8);
  const std::span<const uint8_t> received(auts.data() + 6, 8);
  if (!equal_ct(expected, received)) return fail(Code::MacFailure, "AUTS: MAC-S does not verify");
  return sqn_ms;
}

}  // namespace mcimd::aka
