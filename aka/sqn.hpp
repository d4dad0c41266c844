#pragma once
// USIM-side sequence number management, TS 33.102 Annex C: SQN = SEQ ‖ IND, an array of the
// highest SEQ accepted per IND slot, freshness window Δ, optional limit L on the age of SEQ.
#include <cstdint>
#include <vector>

#include "aka/milenage.hpp"

namespace mcimd::aka {

struct SqnParameters {
  unsigned ind_bits = 5;           // TS 33.102 C.3.2: array of a = 2^5 = 32 entries recommended
  uint64_t delta = 1ull << 28;     // TS 33.102 C.2.1: Δ = 2^28
  uint64_t age_limit = 0;          // TS 33.102 C.2.2: L; 0 = no age limit (optional per profile)
  bool require_amf_separation = false;  // TS 33.102 Annex H: AMF bit 0 ("separation bit") must be 1
};

class SqnArray {
 public:
  // InvalidArgument when ind_bits is 0 or above 10, or delta is 0 or ≥ 2^43.
  [[nodiscard]] static Result<SqnArray> create(const SqnParameters& params);
  // Restores persisted state (the seq() vector). InvalidArgument when the parameters are invalid
  // (as for create), when the size is not 2^ind_bits, or when an entry does not fit in the
  // 48 − ind_bits bits of SEQ.
  [[nodiscard]] static Result<SqnArray> restore(const SqnParameters& params, std::vector<uint64_t> seq);

  const SqnParameters& parameters() const { return params_; }
  // SEQ_MS(i) for every IND slot i; 0 in a slot means nothing was accepted there.
  const std::vector<uint64_t>& seq() const { return seq_; }

  // SQN_MS: the highest SQN accepted so far (SEQ_MS ‖ its IND), what AUTS reports. When several
  // slots hold SEQ_MS, the highest IND among them; 0 when nothing was accepted yet.
  uint64_t highest() const;

  // TS 33.102 C.2: with SEQ = sqn >> ind_bits and IND its low ind_bits bits, accepted iff
  //  - sqn fits in 48 bits (larger values are refused, never reduced modulo 2^48),
  //  - SEQ > SEQ_MS(IND)                       (C.2.2; so SEQ 0 is never accepted),
  //  - SEQ − SEQ_MS ≤ Δ when SEQ > SEQ_MS      (C.2.1, SEQ_MS = the highest SEQ in any slot),
  //  - SEQ_MS − SEQ ≤ L when L ≠ 0 and SEQ < SEQ_MS (C.2.2, optional age limit).
  // All arithmetic is on plain integers: a counter at the top of its range never wraps to small,
  // acceptable values.
  bool acceptable(uint64_t sqn) const;
  // Records an accepted SQN (SEQ_MS(IND) = SEQ). Call only after acceptable() and after the MAC
  // verified. Never lowers a slot and ignores values above 48 bits, so a misplaced call cannot
  // re-open SQNs already used.
  void accept(uint64_t sqn);

  // Initial SQN set at installation: every slot is raised to at least SEQ0 − 1, SEQ0 being the
  // SEQ of initial_sqn (a value above 48 bits counts as 2^48 − 1). On a fresh array this makes
  // exactly the SEQ values SEQ0 .. SEQ0 − 1 + Δ acceptable, in every slot (so initial_sqn itself and
  // the larger values within Δ), and refuses every SEQ below SEQ0. Slots already higher keep their
  // value: seeding never re-opens used SQNs. SEQ0 = 0 changes nothing (a fresh array already
  // accepts every SEQ ≥ 1).
  void seed(uint64_t initial_sqn);

 private:
  void recompute_highest();

  SqnParameters params_;
  std::vector<uint64_t> seq_;
  uint64_t highest_ = 0;  // highest accepted SQN (48 bits), cached from seq_
};

// SQN as a 48-bit big-endian integer (TS 33.102 §6.3.2) and back; sqn_from_u64 keeps the low
// 48 bits.
uint64_t sqn_to_u64(const Sqn& s);
Sqn sqn_from_u64(uint64_t v);

}  // namespace mcimd::aka
