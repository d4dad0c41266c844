#include "common/log.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace mcimd::log {

namespace {
std::atomic<Level> g_max{Level::Info};
std::mutex g_mutex;

bool journal_stream() {
  static const bool yes = std::getenv("JOURNAL_STREAM") != nullptr;
  return yes;
}
}  // namespace

void set_max_level(Level level) { g_max = level; }
Level max_level() { return g_max; }

void write(Level level, std::string_view message) {
  if (static_cast<int>(level) > static_cast<int>(g_max.load())) return;
  std::string line;
  if (journal_stream()) {
    line = "<" + std::to_string(static_cast<int>(level)) + ">";
  } else {
    static constexpr const char* names[] = {"", "", "", "error: ", "warning: ", "", "", "debug: "};
    line = names[static_cast<int>(level)];
  }
  line += message;
  line += '\n';
  std::lock_guard lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace mcimd::log
