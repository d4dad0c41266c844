// Audit records reach the journal with their structured fields. The test stands in for journald:
// in a mount namespace of its own it puts a tmpfs on /run/systemd/journal and reads, from a
// datagram socket bound where sd_journal_send writes, what the daemon's audit call sent.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "daemon/audit.hpp"

using namespace mcimd;

namespace {

std::string last_error(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

TEST(AnAuditRecord, ReachesTheJournalWithItsFields) {
  std::string journal;
  // A child process, so the mount namespace and the environment stay its own.
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    auto report = [&](const std::string& text) {
      (void)!write(pipe_fds[1], text.data(), text.size());
      _exit(0);
    };
    if (unshare(CLONE_NEWNS) != 0) report("ERROR " + last_error("unshare"));
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) report("ERROR " + last_error("mount private"));
    mkdir("/run/systemd", 0755);
    mkdir("/run/systemd/journal", 0755);
    if (mount("tmpfs", "/run/systemd/journal", "tmpfs", 0, "mode=0755") != 0) report("ERROR " + last_error("tmpfs"));
    const int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, "/run/systemd/journal/socket");
    if (bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) report("ERROR " + last_error("bind"));
    setenv("JOURNAL_STREAM", "8:1234", 1);
    daemon::audit_refusal("change-of-subscription", "p1", "00202",
                          Error{Code::NotAuthorized, "Profile p1 of operator 00101 is installed"});
    char buf[8192];
    const ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) report("ERROR " + last_error("recv"));
    report(std::string(buf, static_cast<std::size_t>(n)));
  }
  close(pipe_fds[1]);
  char buf[8192];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0) journal.append(buf, static_cast<std::size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_EQ(journal.rfind("ERROR", 0), std::string::npos) << journal;
  for (const char* field : {"MCIMD_AUDIT=change-of-subscription\n", "MCIMD_PROFILE=p1\n", "MCIMD_OPERATOR=00202\n",
                            "MCIMD_REASON=NotAuthorized\n", "PRIORITY=4\n",
                            "MESSAGE=audit: change-of-subscription refused: profile=p1 operator=00202 "
                            "reason=NotAuthorized (Profile p1 of operator 00101 is installed)\n"})
    EXPECT_NE(journal.find(field), std::string::npos) << field << " not in:\n" << journal;
}

}  // namespace
