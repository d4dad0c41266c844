#pragma once
// Addresses of UNIX domain sockets named by a path (unix(7)).
#include <sys/un.h>

#include <filesystem>

#include "common/error.hpp"

namespace mcimd {

// The sockaddr_un for `path`. InvalidArgument when the path is empty or does not fit sun_path
// with its terminating NUL (107 bytes on Linux).
[[nodiscard]] Result<sockaddr_un> unix_socket_address(const std::filesystem::path& path);

}  // namespace mcimd
