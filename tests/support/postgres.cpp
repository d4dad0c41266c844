#include "tests/support/postgres.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>

#include "common/file.hpp"

namespace mcimd::test {

namespace {

namespace fs = std::filesystem;

constexpr const char* kServerUser = "postgres";  // the system user Debian's postgresql package makes
constexpr const char* kVersionsDir = "/usr/lib/postgresql";
constexpr auto kStartTimeout = std::chrono::seconds(60);
constexpr int kPortAttempts = 5;

// The newest installed server's binaries (/usr/lib/postgresql/<major>/bin), or
// $MCIMD_POSTGRESQL_BINDIR.
fs::path find_bin_dir() {
  if (const char* dir = std::getenv("MCIMD_POSTGRESQL_BINDIR"); dir && *dir) return dir;
  fs::path best;
  long best_major = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kVersionsDir, ec)) {
    const auto bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb", ec) || !fs::exists(bin / "postgres", ec)) continue;
    char* end = nullptr;
    const std::string name = entry.path().filename().string();
    const long major = std::strtol(name.c_str(), &end, 10);
    if (end && *end == '\0' && major > best_major) {
      best_major = major;
      best = bin;
    }
  }
  if (best.empty())
    throw std::runtime_error(std::string("no PostgreSQL server binaries under ") + kVersionsDir +
                             " (scripts/install-deps installs Debian's postgresql package)");
  return best;
}

std::string random_password() {
  std::random_device random;
  std::string out;
  for (int i = 0; i < 24; ++i) out += "0123456789abcdef"[random() % 16];
  return out;
}

// An exclusive flock(2) on a file, held for the life of the object: test processes run side by
// side (ctest -j) and must not build the cached cluster at the same time.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) == 0) return;
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("cannot lock " + path.string());
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

}  // namespace

PostgresServer::PostgresServer() : bin_dir_(find_bin_dir()), password_(random_password()) {
  as_postgres_user_ = ::geteuid() == 0;
  if (as_postgres_user_) {
    const passwd* pw = ::getpwnam(kServerUser);
    if (!pw)
      throw std::runtime_error("running as root, the test server needs the postgres system user, which Debian's "
                               "postgresql package creates");
    if (::chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("chown " + dir_.path().string() + " to postgres failed");
  }
  init_cluster();
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    if (start_on(free_port_pair())) {
      set_password();
      return;
    }
  }
  throw std::runtime_error("PostgreSQL did not start on any of " + std::to_string(kPortAttempts) +
                           " free ports:\n" + log());
}

PostgresServer::~PostgresServer() {
  if (!server_) return;
  // SIGINT: fast shutdown, which ends open sessions instead of waiting for them (SIGTERM).
  if (!server_->stop(SIGINT, std::chrono::seconds(30))) server_->stop(SIGKILL, std::chrono::seconds(10));
}

std::vector<std::string> PostgresServer::as_server_user(std::vector<std::string> argv) const {
  // setpriv execs the command in place, so the pid Process knows is the server's own, and
  // --pdeathsig stops the server if the test process dies without running its destructors.
  std::vector<std::string> out = {"setpriv", "--pdeathsig", "INT"};
  if (as_postgres_user_) out.insert(out.end(), {"--reuid", kServerUser, "--regid", kServerUser, "--init-groups"});
  out.emplace_back("--");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::string PostgresServer::binary(const std::string& name) const { return (bin_dir_ / name).string(); }

void PostgresServer::init_cluster() {
  // initdb takes seconds; a copy of a cluster it made once takes a fraction of one. The copy is
  // kept in the build tree (one per server version and owner) and copied with its owner, so the
  // server, running as postgres when the test runs as root, owns its data. Every server then
  // gets a password of its own once it runs (set_password).
  const fs::path cache = fs::path(MCIMD_BINARY_DIR) / "tests" / "postgres-cluster";
  fs::create_directories(cache);
  const std::string name =
      bin_dir_.parent_path().filename().string() + (as_postgres_user_ ? "-postgres" : "-" + std::to_string(::geteuid()));
  const fs::path cached = cache / name;
  const fs::path data = dir_.path() / "data";
  FileLock lock(cache / (name + ".lock"));
  if (!fs::exists(cached / "PG_VERSION")) {
    make_cluster(data);
    fs::remove_all(cache / (name + ".new"));
    copy_tree(data, cache / (name + ".new"));
    fs::rename(cache / (name + ".new"), cached);
    return;
  }
  copy_tree(cached, data);
}

void PostgresServer::copy_tree(const fs::path& from, const fs::path& to) const {
  // cp -a: owners and modes as they are (PostgreSQL refuses a data directory others may read).
  auto r = run({"cp", "-a", "--", from.string(), to.string()});
  if (r.exit_code != 0) throw std::runtime_error("cp -a " + from.string() + " " + to.string() + " failed: " + r.err);
}

void PostgresServer::make_cluster(const fs::path& data) const {
  // initdb insists on a superuser password when TCP clients must give one; this one is dropped
  // with the file, and each server sets its own.
  const fs::path pwfile = dir_.path() / "pwfile";
  {
    std::ofstream(pwfile) << random_password() << '\n';
  }
  ::chmod(pwfile.c_str(), 0600);
  if (as_postgres_user_) {
    const passwd* pw = ::getpwnam(kServerUser);
    if (!pw || ::chown(pwfile.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("chown " + pwfile.string() + " to postgres failed");
  }
  // Local (socket) connections trusted, TCP ones by password: the tests connect over TCP, so
  // a wrong password is refused as a fleet's server would refuse it.
  auto r = run(as_server_user({binary("initdb"), "-D", data.string(), "-U", role_, "--auth-local=trust",
                               "--auth-host=scram-sha-256", "--pwfile=" + pwfile.string(), "--no-sync",
                               "--no-instructions", "-E", "UTF8", "--locale=C"}),
               {{"LC_ALL", "C"}}, std::chrono::seconds(120));
  fs::remove(pwfile);
  if (r.exit_code != 0)
    throw std::runtime_error("initdb failed (exit " + std::to_string(r.exit_code) + "): " + r.err + r.out);
}

void PostgresServer::set_password() {
  // Over the private unix socket, which the cluster trusts. The password is hex: nothing to quote.
  auto r = run({binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", dir_.path().string(), "-p",
                std::to_string(port_), "-U", role_, "-d", "postgres", "-c",
                "ALTER ROLE " + role_ + " PASSWORD '" + password_ + "'"});
  if (r.exit_code != 0) throw std::runtime_error("setting the test role's password failed: " + r.err);
}

bool PostgresServer::start_on(int port) {
  port_ = port;
  const fs::path log_file = dir_.path() / "postgres.log";
  // -F: no fsync, the data dies with the test anyway; -k: the socket in the private directory.
  server_ = std::make_unique<Process>(ProcessOptions{
      as_server_user({binary("postgres"), "-D", (dir_.path() / "data").string(), "-p", std::to_string(port), "-k",
                      dir_.path().string(), "-c", "listen_addresses=127.0.0.1", "-F", "-c",
                      "synchronous_commit=off", "-c", "full_page_writes=off"}),
      {{"LC_ALL", "C"}},
      log_file,
      log_file});
  bool exited = false;
  const bool ready = wait_until(
      [&] {
        if (!server_->running()) {
          exited = true;
          return true;
        }
        return run({binary("pg_isready"), "-q", "-h", "127.0.0.1", "-p", std::to_string(port), "-t", "1"}).exit_code ==
               0;
      },
      kStartTimeout);
  if (ready && !exited) return true;
  if (!exited) throw std::runtime_error("PostgreSQL did not become ready on port " + std::to_string(port) + ":\n" + log());
  server_.reset();  // it exited: most likely another process took the port meanwhile
  return false;
}

std::string PostgresServer::uri(const std::string& database, const std::string& password) const {
  return "postgresql://" + role_ + ":" + password + "@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string PostgresServer::create_database(const std::string& name) {
  auto r = run({binary("createdb"), "-h", "127.0.0.1", "-p", std::to_string(port_), "-U", role_, name},
               {{"PGPASSWORD", password_}});
  if (r.exit_code != 0)
    throw std::runtime_error("createdb " + name + " failed (exit " + std::to_string(r.exit_code) + "): " + r.err);
  return uri(name, password_);
}

std::string PostgresServer::log() const {
  auto text = read_text_file(dir_.path() / "postgres.log", /*max_size=*/16 << 20);
  return text ? *text : "(no server log: " + text.error().message + ")";
}

}  // namespace mcimd::test
