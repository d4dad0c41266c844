// What the loop thread learns after every job: the profiles, the active one, the platform state.
#include <map>

#include "daemon/service_core.hpp"
#include "daemon/service_helpers.hpp"

namespace mcimd::daemon {

using namespace detail;

ServiceCore::Snapshot ServiceCore::take_snapshot() {
  Snapshot s;
  if (auto* st = device_.store()) {
    for (auto& m : st->profiles()) s.profiles.push_back(to_info(m));
    s.active = st->active().value_or("");
  }
  s.platform_state = std::exchange(device_.platform_state, std::nullopt);
  return s;
}

void ServiceCore::apply(Snapshot s) {
  std::map<uint32_t, const api::ProfileInfo*> before, after;
  for (auto& p : profiles_) before[p.index] = &p;
  for (auto& p : s.profiles) after[p.index] = &p;
  std::vector<api::ProfileInfo> added, changed, removed;
  for (auto& [i, p] : after) {
    auto it = before.find(i);
    if (it == before.end()) added.push_back(*p);
    else if (!same_info(*it->second, *p)) changed.push_back(*p);
  }
  for (auto& [i, p] : before)
    if (!after.count(i)) removed.push_back(*p);
  bool manager = s.active != active_ || (s.platform_state && *s.platform_state != platform_state_);
  profiles_ = std::move(s.profiles);
  active_ = std::move(s.active);
  if (s.platform_state) platform_state_ = *s.platform_state;
  if (!listener_) return;
  for (auto& p : removed) listener_->profile_removed(p);
  for (auto& p : added) listener_->profile_added(p);
  for (auto& p : changed) listener_->profile_changed(p);
  if (manager) listener_->manager_changed();
}

}  // namespace mcimd::daemon
