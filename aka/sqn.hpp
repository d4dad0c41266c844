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
  // Restores persisted state; its size must be 2^ind_bits.
  [[nodiscard]] static Result<SqnArray> restore(const SqnParameters& params, std::vector<uint64_t> seq);

  const SqnParameters& parameters() const { return params_; }
  const std::vector<uint64_t>& seq() const { return seq_; }

  // SQN_MS: the highest SQN accepted so far (SEQ_MS ‖ its IND), what AUTS reports.
  uint64_t highest() const;

  // TS 33.102 C.2: accepted iff SEQ > SEQ_MS[IND] and SEQ − SEQ_MS ≤ Δ (and the age limit holds).
  bool acceptable(uint64_t sqn) const;
  // Records an accepted SQN (SEQ_MS[IND] = SEQ). Call only after acceptable() and after the MAC verified.
  void accept(uint64_t sqn);

  // Initial SQN set at installation: every slot starts below it so that SQN itself is acceptable.
  void seed(uint64_t initial_sqn);

 private:
  SqnParameters params_;
  std::vector<uint64_t> seq_;
  uint64_t highest_ = 0;  // highest accepted SQN (48 bits)
};

uint64_t sqn_to_u64(const Sqn& s);
Sqn sqn_from_u64(uint64_t v);

}  // namespace mcimd::aka
