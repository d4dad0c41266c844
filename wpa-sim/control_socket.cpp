#include "wpa-sim/control_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/unix_socket.hpp"
#include "wpa-sim/sim_request.hpp"

namespace mcimd::wpasim {
namespace {

std::atomic<unsigned> g_socket_counter{0};

}  // namespace

Result<ControlSocket> ControlSocket::connect(const std::filesystem::path& ctrl_path,
                                             const std::filesystem::path& local_dir) {
  const sockaddr_un remote = MCIMD_TRY(unix_socket_address(ctrl_path));
  const auto local_path = local_dir / ("mcimd-wpa-sim-" + std::to_string(getpid()) + "-" +
                                       std::to_string(g_socket_counter.fetch_add(1)));
  const sockaddr_un local = MCIMD_TRY(unix_socket_address(local_path));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno("socket", errno);
  ::unlink(local_path.c_str());  // a stale one of an earlier process with our pid
  ControlSocket sock(fd, {});
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) < 0)
    return fail_errno("bind " + local_path.native(), errno);
  sock.local_path_ = local_path;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&remote), sizeof remote) < 0) {
    const int err = errno;
    if (err == ENOENT) return fail(Code::NotFound, "No control socket at " + ctrl_path.native());
    return fail_errno("connect " + ctrl_path.native(), err);
  }
  return sock;
}

ControlSocket::ControlSocket(ControlSocket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), local_path_(std::move(other.local_path_)) {
  other.local_path_.clear();
}

ControlSocket::~ControlSocket() {
  if (fd_ >= 0) ::close(fd_);
  if (!local_path_.empty()) ::unlink(local_path_.c_str());
}

Status ControlSocket::send(std::string_view command) {
  for (;;) {
    const ssize_t n = ::send(fd_, command.data(), command.size(), MSG_NOSIGNAL);
    if (n >= 0) return {};
    if (errno != EINTR) return fail_errno("send to wpa_supplicant", errno);
  }
}

Result<std::optional<std::string>> ControlSocket::receive(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r < 0) {
    if (errno == EINTR) return std::optional<std::string>{};
    return fail_errno("poll", errno);
  }
  if (r == 0) return std::optional<std::string>{};
  std::vector<char> buf(kMaxEventSize + 1);
  const ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_TRUNC | MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return std::optional<std::string>{};
    return fail_errno("recv from wpa_supplicant", errno);
  }
  const std::size_t kept = std::min(static_cast<std::size_t>(n), buf.size());
  return std::optional<std::string>(std::string(buf.data(), kept));
}

Result<std::string> ControlSocket::request(std::string_view command, std::chrono::milliseconds timeout,
                                           std::deque<std::string>& events) {
  MCIMD_CHECK(send(command));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return fail(Code::IoError, "wpa_supplicant did not answer in time");
    auto message = MCIMD_TRY(receive(left));
    if (!message) continue;
    if (!message->empty() && message->front() == '<') {
      events.push_back(std::move(*message));
      continue;
    }
    if (!message->empty() && message->back() == '\n') message->pop_back();
    return std::move(*message);
  }
}

}  // namespace mcimd::wpasim
