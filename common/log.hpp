#pragma once
// Logging: to stderr with sd-daemon priority prefixes ("<7>") when journald reads our stderr,
// plain otherwise. Library code logs at debug only; never pass a secret here.
#include <string_view>

namespace mcimd::log {

enum class Level { Error = 3, Warning = 4, Notice = 5, Info = 6, Debug = 7 };

void set_max_level(Level level);
Level max_level();
void write(Level level, std::string_view message);

inline void error(std::string_view m) { write(Level::Error, m); }
inline void warning(std::string_view m) { write(Level::Warning, m); }
inline void notice(std::string_view m) { write(Level::Notice, m); }
inline void info(std::string_view m) { write(Level::Info, m); }
inline void debug(std::string_view m) { write(Level::Debug, m); }

}  // namespace mcimd::log
