#include "daemon/audit.hpp"

#include <systemd/sd-journal.h>

#include <cstdlib>
#include <string>

#include "common/log.hpp"

namespace mcimd::daemon {

void audit_refusal(std::string_view event, std::string_view profile, std::string_view operator_id, const Error& why) {
  const std::string p = profile.empty() ? "-" : std::string(profile);
  const std::string o = operator_id.empty() ? "-" : std::string(operator_id);
  const std::string reason(code_name(why.code));
  const std::string message = "audit: " + std::string(event) + " refused: profile=" + p + " operator=" + o +
                              " reason=" + reason + " (" + why.message + ")";
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    const std::string e(event);
    if (sd_journal_send("MESSAGE=%s", message.c_str(), "PRIORITY=%d", static_cast<int>(log::Level::Warning),
                        "MCIMD_AUDIT=%s", e.c_str(), "MCIMD_PROFILE=%s", p.c_str(), "MCIMD_OPERATOR=%s", o.c_str(),
                        "MCIMD_REASON=%s", reason.c_str(), nullptr) >= 0)
      return;
  }
  log::warning(message);
}

}  // namespace mcimd::daemon
