#pragma once
// Internal: what a Store holds, shared by store.cpp (queries), transaction.cpp (commits) and
// recovery.cpp (open).
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "mcim-store/codec.hpp"
#include "mcim-store/store.hpp"

namespace mcimd::store {

struct Store::Impl {
  std::filesystem::path root;
  Anchor* anchor = nullptr;
  detail::State state;  // as committed (and MAC'd) in store.json
  std::optional<CounterJump> jump;
  bool in_transaction = false;
  // Set when a failed write left the disk in a state this Store could not determine: every
  // later commit fails until the store is opened again.
  std::optional<Error> broken;

  const detail::ProfileEntry* find(const std::string& id) const;
  Result<const detail::ProfileEntry*> require(const std::string& id) const;
  // The one commit protocol (transaction.cpp): objects, store.json, counter.
  Status commit(detail::State next, const std::map<detail::ObjectName, Bytes>& staged_objects);
  // After store.json's write reported an error: adopts whichever state the disk holds, removes
  // the write's leftovers, and returns error.
  Status after_failed_write(Error error, detail::State next, const std::string& text);
};

namespace detail {

// Exceptions (allocation, filesystem, JSON) never leave the store's API.
template <class F>
auto guarded(Code code, std::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return fail(code, std::string(what) + ": " + e.what());
  }
}

}  // namespace detail
}  // namespace mcimd::store
