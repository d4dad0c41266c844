#pragma once
// mcimctl's command line: argument parsing (CLI11), the calls (dbus-api Client), text or JSON
// output, and the exit status. mcimctl.cpp only calls run().
#include <iosfwd>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "dbus-api/client.hpp"

namespace mcimd::ctl {

// Exit status of mcimctl (also listed in --help).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,               // any other error
  kExitUsage = 2,                 // bad command line, bad hex, unreadable file
  kExitMacFailure = 3,            // org.mcimd.Tre1.Error.MacFailure
  kExitPlatformStateChanged = 4,  // org.mcimd.Tre1.Error.PlatformStateChanged
  kExitNotAuthorized = 5,         // org.mcimd.Tre1.Error.NotAuthorized or the bus policy's AccessDenied
  kExitNotFound = 6,              // org.mcimd.Tre1.Error.NotFound
  kExitUnreachable = 7,           // no bus, or mcimd not running
};

int exit_code_for(const api::CallError& error);

// A profile given as its index ("3") or its object path ("/org/mcimd/Tre1/Profile/3"); returns
// the object path. Anything else → InvalidArgument.
[[nodiscard]] Result<std::string> profile_argument(std::string_view text);

// Runs mcimctl with the given arguments; output to `out`, diagnostics to `err`.
int run(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace mcimd::ctl
