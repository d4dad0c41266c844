#include "operator/eap_sim_db_cli.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "common/bytes.hpp"
#include "common/unix_socket.hpp"
#include "operator/cli.hpp"
#include "operator/eap_sim_db.hpp"
#include "operator/key_options.hpp"

namespace mcimd::op {
namespace {

constexpr std::string_view kProgram = "mcim-operator";

std::atomic<bool> g_stop{false};
extern "C" void on_eap_sim_db_signal(int) { g_stop.store(true); }

// The served socket: its descriptor, and its path removed on the way out unless another
// process has put something else there meanwhile.
class ServedSocket {
 public:
  // Binds `path` as a datagram socket of mode 0660 (owner and group may send; hostapd runs as
  // root or in the group). An existing path is replaced only when it is a socket nobody serves
  // (connect() refused): anything else there is AlreadyExists.
  [[nodiscard]] static Result<ServedSocket> bind(const std::filesystem::path& path);

  ServedSocket(ServedSocket&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)), dev_(other.dev_), ino_(other.ino_) {
    other.path_.clear();
  }
  ServedSocket& operator=(ServedSocket&&) = delete;
  ServedSocket(const ServedSocket&) = delete;
  ~ServedSocket() {
    if (fd_ >= 0) ::close(fd_);
    struct stat st {};
    if (!path_.empty() && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
      ::unlink(path_.c_str());
  }

  int fd() const { return fd_; }

 private:
  explicit ServedSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::filesystem::path path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// Refuses a path that is not a stale socket, and removes one that is.
Status clear_stale_socket(const std::filesystem::path& path, const sockaddr_un& address) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno("stat " + path.native(), errno);
  }
  if (!S_ISSOCK(st.st_mode)) return fail(Code::AlreadyExists, path.native() + " exists and is not a socket");
  const int probe = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return fail_errno("socket", errno);
  const int connected = ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int error = errno;
  ::close(probe);
  if (connected == 0) return fail(Code::AlreadyExists, "another process serves " + path.native());
  // unix(7): ECONNREFUSED when no socket is bound to the path any more.
  if (error != ECONNREFUSED) return fail_errno("connect " + path.native(), error);
  if (::unlink(path.c_str()) != 0) return fail_errno("remove the stale socket " + path.native(), errno);
  return {};
}

Result<ServedSocket> ServedSocket::bind(const std::filesystem::path& path) {
  const sockaddr_un address = MCIMD_TRY(unix_socket_address(path));
  MCIMD_CHECK(clear_stale_socket(path, address));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno("socket", errno);
  ServedSocket sock(fd);
  // bind() creates the file with the process umask applied: 0117 gives 0660 from the start,
  // with no moment at which others may send.
  const mode_t old_umask = ::umask(0117);
  const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int error = errno;
  ::umask(old_umask);
  if (bound != 0) return fail_errno("bind " + path.native(), error);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return fail_errno("stat " + path.native(), errno);
  sock.path_ = path;
  sock.dev_ = st.st_dev;
  sock.ino_ = st.st_ino;
  return sock;
}

// SIGTERM and SIGINT set g_stop. They stay blocked except inside ppoll(), so one that arrives
// between two requests still ends the wait (no SA_RESTART, no lost wake-up). Restores the
// previous handlers and mask when it goes.
class StopSignals {
 public:
  StopSignals() {
    g_stop.store(false);
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stops, &old_mask_);
    wait_mask_ = old_mask_;
    sigdelset(&wait_mask_, SIGTERM);
    sigdelset(&wait_mask_, SIGINT);
    struct sigaction sa {};
    sa.sa_handler = on_eap_sim_db_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGTERM, &sa, &old_term_);
    sigaction(SIGINT, &sa, &old_int_);
  }
  ~StopSignals() {
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGINT, &old_int_, nullptr);
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  const sigset_t& wait_mask() const { return wait_mask_; }

 private:
  sigset_t old_mask_{}, wait_mask_{};
  struct sigaction old_term_ {}, old_int_ {};
};

// Serves requests until a stop signal. Only the socket itself failing ends it early; a request
// that cannot be answered is logged and the next one is served.
Status serve(EapSimDb& db, const ServedSocket& sock, std::ostream& err) {
  StopSignals signals;
  // One byte more than a request may have, so that a longer one is seen (MSG_TRUNC) and refused.
  std::array<char, kEapSimDbMaxRequest + 1> buffer{};
  while (!g_stop.load()) {
    pollfd p{sock.fd(), POLLIN, 0};
    const int ready = ::ppoll(&p, 1, nullptr, &signals.wait_mask());
    if (ready < 0) {
      if (errno == EINTR) continue;
      return fail_errno("poll", errno);
    }
    sockaddr_un sender{};
    socklen_t sender_size = sizeof sender;
    const ssize_t n = ::recvfrom(sock.fd(), buffer.data(), buffer.size(), MSG_TRUNC | MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&sender), &sender_size);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return fail_errno("receive a request", errno);
    }
    const std::size_t kept = std::min(static_cast<std::size_t>(n), buffer.size());
    auto reply = db.handle(std::string_view(buffer.data(), kept));
    wipe(buffer.data(), buffer.size());
    if (!reply) continue;
    // unix(7): an unbound sender's address is the family alone; there is nowhere to answer.
    if (sender_size <= sizeof(sa_family_t)) {
      err << "eap-sim-db: Failed to answer: the sender has no address (an unbound socket), ignoring." << std::endl;
    } else if (::sendto(sock.fd(), reply->data(), reply->size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                        reinterpret_cast<const sockaddr*>(&sender), sender_size) < 0) {
      err << "eap-sim-db: Failed to answer: sendto: " << std::strerror(errno) << ", ignoring." << std::endl;
    }
    wipe(reply->data(), reply->size());
  }
  return {};
}

}  // namespace

struct EapSimDbCommands::Options {
  CLI::App* serve = nullptr;
  KeyOptions keys;
  std::string socket, imsi, sqn = "000000000020", amf = "8000";
  unsigned ind_bits = 5;
};

EapSimDbCommands::EapSimDbCommands(CLI::App& app) : o_(std::make_unique<Options>()) {
  auto& o = *o_;
  o.serve = app.add_subcommand("eap-sim-db",
                               "Serve one subscriber's AKA vectors and GSM triplets to hostapd's EAP-SIM/AKA/AKA' "
                               "server (eap_sim_db=unix:PATH) until SIGTERM or SIGINT");
  o.serve->add_option("--socket", o.socket, "UNIX datagram socket to serve, created 0660 (hostapd's unix:PATH)")
      ->required();
  o.serve->add_option("--imsi", o.imsi, "IMSI of the subscriber served, 6–15 digits")->required();
  o.keys.add_to(*o.serve);
  o.serve->add_option("--sqn", o.sqn, "SQN of the first vector, 6 bytes hex (default 000000000020: SEQ 1, IND 0)");
  o.serve->add_option("--amf", o.amf, "AMF, 2 bytes hex (default 8000: separation bit set, as EAP-AKA' needs)");
  o.serve->add_option("--ind-bits", o.ind_bits, "bits of IND in SQN = SEQ ‖ IND (default 5)")
      ->check(CLI::Range(1u, 10u));
}

EapSimDbCommands::~EapSimDbCommands() = default;

std::vector<std::string> EapSimDbCommands::names() const { return {o_->serve->get_name()}; }

std::optional<int> EapSimDbCommands::run(std::ostream& /*out*/, std::ostream& err) {
  auto& o = *o_;
  if (!o.serve->parsed()) return std::nullopt;
  if (auto address = unix_socket_address(o.socket); !address)
    return option_error(err, "--socket", address.error().message);
  // Every message below names its option already.
  const auto usage = [&err](const Error& error) {
    err << kProgram << ": " << error.message << '\n';
    return kExitUsage;
  };
  auto keys = o.keys.keys();
  if (!keys) return usage(keys.error());
  wipe(o.keys.k.data(), o.keys.k.size());
  wipe(o.keys.op.data(), o.keys.op.size());
  wipe(o.keys.opc.data(), o.keys.opc.size());

  EapSimDbOptions options;
  options.imsi = o.imsi;
  options.ind_bits = o.ind_bits;
  auto sqn = fixed_from_hex<6>(o.sqn, "--sqn");
  if (!sqn) return usage(sqn.error());
  options.first_sqn = *sqn;
  auto amf = fixed_from_hex<2>(o.amf, "--amf");
  if (!amf) return usage(amf.error());
  options.amf = *amf;
  auto log = [&err](std::string_view line) { err << line << std::endl; };
  auto db = EapSimDb::create(std::move(*keys), std::move(options), openssl_rand, log);
  if (!db) return usage(db.error());

  auto sock = ServedSocket::bind(o.socket);
  if (!sock) return step_failed(err, "serve on " + o.socket, sock.error());
  err << "eap-sim-db: serving IMSI " << o.imsi << " on " << o.socket << std::endl;
  if (auto served = serve(*db, *sock, err); !served) return step_failed(err, "serve on " + o.socket, served.error());
  err << "eap-sim-db: stopped" << std::endl;
  return kExitOk;
}

}  // namespace mcimd::op
