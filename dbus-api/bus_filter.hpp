#pragma once
// Caller checks. One bus filter sees every incoming method call on our objects (including
// Properties, Introspectable, ObjectManager and Peer) before sd-bus dispatches it. In order:
//  1. calls outside /org/mcimd/Tre1 and its subtree, and anything but method calls, pass (the
//     oFono-shaped objects, with the compatibility on, have a filter of their own for /,
//     /mcimd_0 and below, which makes the same checks);
//  2. the access the member needs is looked up (required_access(); unknown → Manage);
//  3. the sender's credentials are queried (sd_bus_query_sender_creds with EUID, UID, EGID,
//     supplementary GIDs, AUGMENT) and reduced to what may be trusted (trusted_caller());
//  4. the call is refused with org.mcimd.Tre1.Error.NotAuthorized unless the caller's role
//     permits that access (authorize()), or when the credentials cannot be had.
#include <optional>
#include <string_view>

#include "common/error.hpp"
#include "dbus-api/access.hpp"
#include "dbus-api/bus_handles.hpp"

namespace mcimd::api {

// The access a member needs when an access table lists it: ours beside each vtable, and the
// standard interfaces' here. nullopt for anything else.
std::optional<Access> listed_access(std::string_view interface, std::string_view member);

// The access a method call needs, by interface and member. Default deny: a member no table
// lists (or a call without interface) needs Manage.
Access required_access(std::string_view interface, std::string_view member);

// The sender's credentials, reduced to what may be trusted (see trusted_caller()).
[[nodiscard]] Result<Caller> query_caller(sd_bus_message* m);

// Steps 2 to 4 for one method call: 0 lets it through; otherwise `ret_error` is set and the
// negative errno a filter returns to have sd-bus answer with it.
int authorize_call(sd_bus_message* m, const AccessPolicy& policy, sd_bus_error* ret_error);

// The filter for sd_bus_add_filter(); `userdata` is the AccessPolicy, which must outlive the slot.
// It covers /org/mcimd/Tre1 and its subtree (step 1); the oFono-shaped objects have their own
// (ofono_compat.hpp), which calls authorize_call() alike.
int filter_authorize(sd_bus_message* m, void* userdata, sd_bus_error* ret_error);

}  // namespace mcimd::api
