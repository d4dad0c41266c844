#include "mcim-store/recovery.hpp"

#include <limits>
#include <string>

#include "common/file.hpp"
#include "common/log.hpp"
#include "mcim-store/layout.hpp"

namespace mcimd::store::detail {

namespace fs = std::filesystem;

namespace {

// What the counter says about the state's generation (store.hpp, Store::open).
enum class CounterVerdict {
  InStep,            // c == g
  IncrementPending,  // c + 1 == g: a commit whose increment did not happen
  Jumped,            // c > g within the window after a TPM restart: re-anchor
};

struct CounterCheck {
  CounterVerdict verdict = CounterVerdict::InStep;
  uint64_t counter = 0;
  BootCounts current;  // read only when the counter is ahead
};

Result<CounterCheck> check_counter(Anchor& anchor, const State& state, const StoreOptions& options,
                                   const std::string& file) {
  CounterCheck out;
  const uint64_t c = out.counter = MCIMD_TRY(anchor.counter());
  const uint64_t g = state.generation;
  const std::string found =
      file + " has generation " + std::to_string(g) + " and the TPM counter is at " + std::to_string(c);
  if (c == g) return out;
  if (c < g) {
    if (c + 1 == g) {
      out.verdict = CounterVerdict::IncrementPending;
      return out;
    }
    return fail(Code::StoreCorrupt,
                found + ": the store is ahead of the counter by more than one commit (another or a cleared TPM?)");
  }
  const std::string older = found + ": the store is older than the TPM counter (restored from a backup?)";
  if (c - g > options.counter_window) return fail(Code::RollbackDetected, older);
  out.current = MCIMD_TRY(anchor.boot_counts());
  if (out.current == state.boot_counts)
    return fail(Code::RollbackDetected, older + "; the TPM has not restarted since the store's last commit, so no "
                                                "unclean TPM shutdown explains the gap");
  // After an unclean shutdown the TPM sets an orderly counter's low bits, MAX_ORDERLY_COUNT, to
  // ones (reference implementation, NvEntityStartup; swtpm brought 3 back as 255). A counter
  // that does not end so moved by increments, not by itself: a clean reboot explains no gap.
  if (c % options.counter_window != options.counter_window - 1)
    return fail(Code::RollbackDetected, older + "; the TPM restarted, but an orderly counter that moved on by "
                                                "itself after an unclean shutdown ends in all ones, and this "
                                                "one does not");
  if (c == std::numeric_limits<uint64_t>::max()) return fail(Code::Unsupported, "The TPM counter is exhausted");
  out.verdict = CounterVerdict::Jumped;
  return out;
}

Result<Opened> create_store(const fs::path& root, Anchor& anchor, const ObjectsListing& objects) {
  if (!objects.empty())
    return fail(Code::StoreCorrupt,
                store_file(root).string() + ": missing, but " + objects_dir(root).string() + " holds " +
                    std::to_string(objects.objects.size() + objects.temporaries.size()) +
                    " files: the store's state was lost; refusing to start an empty store over them");
  Opened out;
  out.state.generation = MCIMD_TRY(anchor.counter());
  out.state.boot_counts = MCIMD_TRY(anchor.boot_counts());
  const std::string text = MCIMD_TRY(encode_store(out.state, anchor));
  collect_garbage(root, {});  // an earlier attempt's temporary store.json
  MCIMD_CHECK(write_store_file(root, text));
  log::debug("Created the store " + root.string() + " at generation " + std::to_string(out.state.generation));
  return out;
}

}  // namespace

Status increment_to(Anchor& anchor, uint64_t generation) {
  const uint64_t v = MCIMD_TRY(anchor.increment());
  if (v != generation)
    return fail(Code::StoreCorrupt, "The TPM counter moved to " + std::to_string(v) + " instead of " +
                                        std::to_string(generation) + ": another process changed it");
  return {};
}

Result<Opened> open_store(const fs::path& root, Anchor& anchor, const StoreOptions& options) {
  MCIMD_CHECK(make_owned_dir(root, /*follow_symlink=*/true));
  MCIMD_CHECK(make_owned_dir(objects_dir(root), /*follow_symlink=*/false));
  const ObjectsListing objects = MCIMD_TRY(list_objects(root));
  const auto text = MCIMD_TRY(read_store_file(root));
  if (!text) return create_store(root, anchor, objects);

  const std::string file = store_file(root).string();
  Document doc = MCIMD_TRY(decode_store(*text, file));
  MCIMD_CHECK(verify_mac(doc, anchor, file));
  // Authentic from here on: a broken invariant is a bug of ours, not an edit from outside.
  if (auto why = invariant_violation(doc.state)) return fail(Code::StoreCorrupt, file + ": " + *why);
  const std::vector<ObjectName> referenced = referenced_objects(doc.state);
  for (const auto& name : referenced) MCIMD_CHECK(read_object(root, name));
  const CounterCheck counter = MCIMD_TRY(check_counter(anchor, doc.state, options, file));

  // Every check passed: only now may the disk change.
  Opened out;
  out.state = std::move(doc.state);
  collect_garbage(root, {referenced.begin(), referenced.end()});
  switch (counter.verdict) {
    case CounterVerdict::InStep:
      break;
    case CounterVerdict::IncrementPending:
      // The previous process may have died between the rename and its directory sync.
      MCIMD_CHECK(fsync_dir(root));
      MCIMD_CHECK(increment_to(anchor, out.state.generation));
      log::debug("Completed the commit of generation " + std::to_string(out.state.generation));
      break;
    case CounterVerdict::Jumped:
      out.jump = CounterJump{out.state.generation, counter.counter, out.state.boot_counts, counter.current};
      // Re-anchor at once, recording the new boot counts: the window serves this restart only.
      out.state.generation = counter.counter + 1;
      out.state.boot_counts = counter.current;
      MCIMD_CHECK(write_store_file(root, MCIMD_TRY(encode_store(out.state, anchor))));
      MCIMD_CHECK(increment_to(anchor, out.state.generation));
      log::debug("Re-anchored the store at generation " + std::to_string(out.state.generation) +
                 " after the TPM counter moved on by " + std::to_string(counter.counter - out.jump->generation));
      break;
  }
  return out;
}

}  // namespace mcimd::store::detail
