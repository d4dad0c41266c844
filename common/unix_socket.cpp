#include "common/unix_socket.hpp"

#include <sys/socket.h>

#include <cstring>
#include <string>

namespace mcimd {

Result<sockaddr_un> unix_socket_address(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& p = path.native();
  if (p.empty() || p.size() >= sizeof(addr.sun_path))
    return fail(Code::InvalidArgument, "Socket path is empty or longer than " +
                                           std::to_string(sizeof(addr.sun_path) - 1) + " bytes: " + p);
  std::memcpy(addr.sun_path, p.data(), p.size());
  return addr;
}

}  // namespace mcimd
