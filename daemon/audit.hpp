#pragma once
// Audit records of refused lifecycle requests (a change of subscription, a remote command): what
// an operator's fraud team reads. Structured journal fields when journald runs the daemon
// (MCIMD_AUDIT=<event>, MCIMD_PROFILE, MCIMD_OPERATOR, MCIMD_REASON=<error code>, and MESSAGE);
// otherwise one line on stderr, "audit: <event> refused: profile=… operator=… reason=… (message)".
// Never a secret: the fields are ids and the error's message.
#include <string_view>

#include "common/error.hpp"

namespace mcimd::daemon {

void audit_refusal(std::string_view event, std::string_view profile, std::string_view operator_id, const Error& why);

}  // namespace mcimd::daemon
