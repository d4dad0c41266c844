#include "aka/usim.hpp"

#include <algorithm>

#include "aka/milenage_blocks.hpp"

namespace mcimd::aka {

using detail::Out;
using detail::Scrub;

namespace {

// TS 33.102 Annex H: AMF bit 0, the most significant bit of the first octet, is the separation bit.
constexpr uint8_t kAmfSeparationBit = 0x80;

}  // namespace

Result<UmtsOutcome> usim_authenticate(BlockCipher& k, const Block& opc, SqnArray& sqns, const Rand& rand,
                                      const Autn& autn) {
  // Call 1: TEMP.
  Block temp = MCIMD_TRY(detail::compute_temp(k, opc, rand));
  Scrub scrub_temp(temp);

  // Call 2: OUT2..OUT5, everything that does not depend on SQN.
  Block inputs[4] = {detail::out_input(temp, opc, Out::Two), detail::out_input(temp, opc, Out::Three),
                     detail::out_input(temp, opc, Out::Four), detail::out_input(temp, opc, Out::Five)};
  Scrub scrub_inputs(inputs);
  auto outs = MCIMD_TRY(detail::encrypt_exact(k, inputs));
  Scrub scrub_outs(outs);
  for (auto& out : outs) detail::finish_out(out, opc);
  const Block& out2 = outs[0];
  const Block& out5 = outs[3];

  // TS 33.102 §6.3.3: AUTN = SQN ⊕ AK ‖ AMF ‖ MAC; AK = f5 = OUT2[0..47] (TS 35.206 §4.1).
  Sqn sqn;
  for (std::size_t i = 0; i < sqn.size(); ++i) sqn[i] = autn[i] ^ out2[i];
  const Amf amf{autn[6], autn[7]};
  const Sqn sqn_ms = sqn_from_u64(sqns.highest());

  // Call 3: OUT1 for XMAC-A (SQN and AMF from AUTN) and OUT1 for MAC-S (SQN_MS, AMF* = 0x0000 per
  // TS 33.102 §6.3.3), together, so that a synchronisation failure costs no extra call.
  const Amf dummy_amf{};
  Block out1_inputs[2] = {detail::out1_input(temp, opc, sqn, amf), detail::out1_input(temp, opc, sqn_ms, dummy_amf)};
  Scrub scrub_out1_inputs(out1_inputs);
  auto out1s = MCIMD_TRY(detail::encrypt_exact(k, out1_inputs));
  Scrub scrub_out1s(out1s);
  for (auto& out : out1s) detail::finish_out(out, opc);

  // Check 1 (TS 33.102 §6.3.3): XMAC = f1 = OUT1[0..63] must equal MAC in AUTN.
  const std::span<const uint8_t> xmac(out1s[0].data(), 8);
  const std::span<const uint8_t> mac(autn.data() + 8, 8);
  if (!equal_ct(xmac, mac)) return fail(Code::MacFailure, "AUTN: MAC-A does not verify");

  // Check 2 (TS 33.102 §6.3.3, Annex C): SQN freshness; on failure AUTS = SQN_MS ⊕ AK* ‖ MAC-S with
  // AK* = f5* = OUT5[0..47] and MAC-S = f1* = OUT1[64..127].
  const uint64_t sqn_value = sqn_to_u64(sqn);
  if (!sqns.acceptable(sqn_value)) {
    UmtsSyncFailure sync;
    for (std::size_t i = 0; i < sqn_ms.size(); ++i) sync.auts[i] = sqn_ms[i] ^ out5[i];
    std::copy_n(out1s[1].begin() + 8, 8, sync.auts.begin() + 6);
    return UmtsOutcome{sync};
  }

  // Check 3 (TS 33.102 Annex H): the AMF separation bit, where the profile requires it.
  if (sqns.parameters().require_amf_separation && (amf[0] & kAmfSeparationBit) == 0)
    return fail(Code::AmfFailure, "AUTN: AMF separation bit is not set");

  sqns.accept(sqn_value);
  // TS 35.206 §4.1: RES = f2 = OUT2[64..127], CK = f3 = OUT3, IK = f4 = OUT4.
  UmtsSuccess ok;
  std::copy_n(out2.begin() + 8, 8, ok.res.begin());
  ok.ck = outs[1];
  ok.ik = outs[2];
  ok.sqn = sqn_value;
  return UmtsOutcome{ok};
}

Result<GsmTriplet> gsm_authenticate(BlockCipher& k, const Block& opc, const Rand& rand) {
  Block temp = MCIMD_TRY(detail::compute_temp(k, opc, rand));
  Scrub scrub_temp(temp);

  // Second and last call: OUT2 (f2), OUT3 (f3), OUT4 (f4); GSM needs no SQN.
  Block inputs[3] = {detail::out_input(temp, opc, Out::Two), detail::out_input(temp, opc, Out::Three),
                     detail::out_input(temp, opc, Out::Four)};
  Scrub scrub_inputs(inputs);
  auto outs = MCIMD_TRY(detail::encrypt_exact(k, inputs));
  Scrub scrub_outs(outs);
  for (auto& out : outs) detail::finish_out(out, opc);

  Res xres;
  Scrub scrub_xres(xres);
  std::copy_n(outs[0].begin() + 8, 8, xres.begin());
  return gsm_convert(xres, outs[1], outs[2]);
}

GsmTriplet gsm_convert(const Res& xres, const Block& ck, const Block& ik) {
  GsmTriplet t;
  // TS 33.102 §6.8.1.2 c2: SRES = XRES1 ⊕ XRES2 ⊕ XRES3 ⊕ XRES4 over XRES zero-padded to 128 bits
  // in 32-bit pieces; with a 64-bit XRES the last two pieces are zero.
  for (std::size_t i = 0; i < t.sres.size(); ++i) t.sres[i] = xres[i] ^ xres[i + 4];
  // TS 33.102 §6.8.1.2 c3: Kc = CK1 ⊕ CK2 ⊕ IK1 ⊕ IK2, each the 64-bit halves of CK and IK.
  for (std::size_t i = 0; i < t.kc.size(); ++i) t.kc[i] = ck[i] ^ ck[i + 8] ^ ik[i] ^ ik[i + 8];
  return t;
}

}  // namespace mcimd::aka
