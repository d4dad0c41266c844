#include "tests/support/dbus_daemon.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <stdexcept>

namespace mcimd::test {

namespace {

bool accepts_connections(const std::filesystem::path& socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = socket.string();
  if (path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool connected = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return connected;
}

}  // namespace

DbusDaemon::DbusDaemon(const DbusDaemonOptions& options) {
  auto socket = dir_.path() / "bus";
  address_ = "unix:path=" + socket.string();
  auto config = dir_.path() / "bus.conf";
  {
    std::ofstream out(config);
    out << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
           " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
           "<busconfig>\n"
           "  <type>system</type>\n"
           "  <listen>"
        << address_
        << "</listen>\n"
           "  <auth>EXTERNAL</auth>\n";
    if (options.allow_all) {
      out << "  <policy context=\"default\">\n"
             "    <allow user=\"*\"/>\n"
             "    <allow own=\"*\"/>\n"
             "    <allow send_type=\"method_call\"/>\n"
             "    <allow send_destination=\"*\"/>\n"
             "    <allow receive_sender=\"*\"/>\n"
             "  </policy>\n";
    } else {
      // The system bus defaults: deny own/send, allow replies and signals.
      out << "  <policy context=\"default\">\n"
             "    <allow user=\"*\"/>\n"
             "    <deny own=\"*\"/>\n"
             "    <deny send_type=\"method_call\"/>\n"
             "    <allow send_type=\"signal\"/>\n"
             "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
             "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
             "    <allow receive_type=\"method_call\"/>\n"
             "    <allow receive_type=\"method_return\"/>\n"
             "    <allow receive_type=\"error\"/>\n"
             "    <allow receive_type=\"signal\"/>\n"
             "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
             "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
             "  </policy>\n";
    }
    out << options.extra_config << "\n</busconfig>\n";
  }
  // Other uids (the unauthorised-caller tests) must reach the socket.
  chmod(dir_.path().c_str(), 0755);
  proc_ = std::make_unique<Process>(ProcessOptions{
      {"dbus-daemon", "--nofork", "--nopidfile", "--config-file=" + config.string()},
      {},
      std::nullopt,
      dir_.path() / "dbus.err"});
  // Ready when it accepts a connection: the socket file appears at bind(), before listen(), and
  // a client connecting in between is refused (seen on loaded machines).
  if (!wait_until([&] { return accepts_connections(socket); }, std::chrono::seconds(30)))
    throw std::runtime_error("dbus-daemon did not start accepting connections on " + socket.string());
  chmod(socket.c_str(), 0777);
}

DbusDaemon::~DbusDaemon() {
  if (proc_) proc_->stop(SIGTERM);
}

}  // namespace mcimd::test
