#pragma once
// Internal: opening a store — inspect, verify, complete an interrupted commit, clean up.
#include <filesystem>
#include <optional>

#include "mcim-store/codec.hpp"
#include "mcim-store/store.hpp"

namespace mcimd::store::detail {

struct Opened {
  State state;
  std::optional<CounterJump> jump;
};

// Store::open()'s checks and actions, in the order store.hpp lists them.
[[nodiscard]] Result<Opened> open_store(const std::filesystem::path& root, Anchor& anchor,
                                        const StoreOptions& options);

// The increment that seals a store.json at `generation`, already written and on disk: the
// counter must move to exactly `generation` (StoreCorrupt otherwise: another process changed it).
[[nodiscard]] Status increment_to(Anchor& anchor, uint64_t generation);

}  // namespace mcimd::store::detail
