#include "tests/support/dbus_daemon.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <stdexcept>

namespace mcimd::test {

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
  if (!wait_until([&] { return std::filesystem::exists(socket); }, std::chrono::seconds(10)))
    throw std::runtime_error("dbus-daemon did not start");
  chmod(socket.c_str(), 0777);
}

DbusDaemon::~DbusDaemon() {
  if (proc_) proc_->stop(SIGTERM);
}

}  // namespace mcimd::test
