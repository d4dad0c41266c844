#include "aka/sqn.hpp"

#include <algorithm>
#include <string>

namespace mcimd::aka {

namespace {

// TS 33.102 §6.3.2: SQN is 48 bits.
constexpr unsigned kSqnBits = 48;
constexpr uint64_t kSqnMax = (uint64_t{1} << kSqnBits) - 1;
// Bound on IND: 2^10 = 1024 slots is far above the 32 TS 33.102 C.3.2 recommends and keeps the
// persisted array small.
constexpr unsigned kMaxIndBits = 10;
// Bound on Δ: 2^43 is the whole SEQ range with the recommended 32-slot array (TS 33.102 C.3.2); a
// wider window would make the wrap-around protection of C.2.1 meaningless.
constexpr uint64_t kDeltaLimit = uint64_t{1} << 43;

Status validate(const SqnParameters& params) {
  if (params.ind_bits == 0 || params.ind_bits > kMaxIndBits)
    return fail(Code::InvalidArgument, "SQN parameters: ind_bits must be 1.." + std::to_string(kMaxIndBits) +
                                           ", got " + std::to_string(params.ind_bits));
  if (params.delta == 0 || params.delta >= kDeltaLimit)
    return fail(Code::InvalidArgument, "SQN parameters: delta must be 1..2^43-1, got " + std::to_string(params.delta));
  return {};
}

uint64_t max_seq(const SqnParameters& params) { return kSqnMax >> params.ind_bits; }
uint64_t seq_of(const SqnParameters& params, uint64_t sqn) { return sqn >> params.ind_bits; }
std::size_t ind_of(const SqnParameters& params, uint64_t sqn) {
  return static_cast<std::size_t>(sqn & ((uint64_t{1} << params.ind_bits) - 1));
}

}  // namespace

Result<SqnArray> SqnArray::create(const SqnParameters& params) {
  MCIMD_CHECK(validate(params));
  SqnArray array;
  array.params_ = params;
  array.seq_.assign(std::size_t{1} << params.ind_bits, 0);
  array.highest_ = 0;
  return array;
}

Result<SqnArray> SqnArray::restore(const SqnParameters& params, std::vector<uint64_t> seq) {
  MCIMD_CHECK(validate(params));
  const std::size_t slots = std::size_t{1} << params.ind_bits;
  if (seq.size() != slots)
    return fail(Code::InvalidArgument, "SQN array: expected " + std::to_string(slots) + " entries for ind_bits " +
                                           std::to_string(params.ind_bits) + ", got " + std::to_string(seq.size()));
  for (std::size_t i = 0; i < seq.size(); ++i)
    if (seq[i] > max_seq(params))
      return fail(Code::InvalidArgument, "SQN array: entry " + std::to_string(i) + " exceeds the " +
                                             std::to_string(kSqnBits - params.ind_bits) + "-bit SEQ range");
  SqnArray array;
  array.params_ = params;
  array.seq_ = std::move(seq);
  array.recompute_highest();
  return array;
}

uint64_t SqnArray::highest() const { return highest_; }

void SqnArray::recompute_highest() {
  // TS 33.102 C.2.2: SEQ_MS is the highest SEQ in the array; with equal SEQ in several slots the
  // highest SQN is the one with the highest IND. SEQ 0 is never accepted, so a zero maximum means
  // nothing was accepted yet and SQN_MS is 0.
  highest_ = 0;
  for (std::size_t i = 0; i < seq_.size(); ++i) {
    if (seq_[i] == 0) continue;
    highest_ = std::max(highest_, seq_[i] << params_.ind_bits | i);
  }
}

bool SqnArray::acceptable(uint64_t sqn) const {
  // SQN is 48 bits: anything above is refused rather than reduced modulo 2^48, so that a counter
  // at the top of the range can never wrap around to small, acceptable values.
  if (sqn > kSqnMax) return false;
  const uint64_t seq = seq_of(params_, sqn);
  const std::size_t ind = ind_of(params_, sqn);
  // TS 33.102 C.2.2: SEQ > SEQ_MS(i).
  if (seq <= seq_[ind]) return false;
  const uint64_t seq_ms = highest_ >> params_.ind_bits;
  // TS 33.102 C.2.1: SEQ − SEQ_MS ≤ Δ (only a SEQ above SEQ_MS can be too far ahead).
  if (seq > seq_ms && seq - seq_ms > params_.delta) return false;
  // TS 33.102 C.2.2 (optional): SEQ_MS − SEQ ≤ L.
  if (params_.age_limit != 0 && seq < seq_ms && seq_ms - seq > params_.age_limit) return false;
  return true;
}

void SqnArray::accept(uint64_t sqn) {
  if (sqn > kSqnMax) return;
  uint64_t& slot = seq_[ind_of(params_, sqn)];
  // Never lowers a slot, so a misplaced call cannot re-open values already used.
  slot = std::max(slot, seq_of(params_, sqn));
  recompute_highest();
}

void SqnArray::seed(uint64_t initial_sqn) {
  const uint64_t seq0 = seq_of(params_, std::min(initial_sqn, kSqnMax));
  // SEQ 0 is never acceptable (SEQ > SEQ_MS(i) ≥ 0), and a fresh array already accepts every SEQ ≥ 1.
  if (seq0 == 0) return;
  for (auto& slot : seq_) slot = std::max(slot, seq0 - 1);
  recompute_highest();
}

uint64_t sqn_to_u64(const Sqn& s) {
  uint64_t v = 0;
  for (uint8_t b : s) v = v << 8 | b;
  return v;
}

Sqn sqn_from_u64(uint64_t v) {
  Sqn s;
  for (std::size_t i = s.size(); i-- > 0;) {
    s[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
  return s;
}

}  // namespace mcimd::aka
