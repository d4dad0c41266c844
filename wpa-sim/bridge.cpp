#include "wpa-sim/bridge.hpp"

#include <poll.h>

#include <deque>

#include "common/log.hpp"
#include "dbus-api/client.hpp"
#include "wpa-sim/answer.hpp"
#include "wpa-sim/control_socket.hpp"

namespace mcimd::wpasim {
namespace {

// mcimd over D-Bus. The connection is made at the first request and made again after a bus
// error, so the bridge outlives restarts of mcimd and of the bus.
class McimdUsim final : public Usim {
 public:
  explicit McimdUsim(const BridgeOptions& options) : options_(options) {}

  api::CallResult<api::UmtsAuthResult> umts_authenticate(const Bytes& rand, const Bytes& autn) override {
    return with_profile([&](api::Client& c, const std::string& path) { return c.umts_authenticate(path, rand, autn); });
  }
  api::CallResult<std::vector<api::GsmAuthResult>> gsm_authenticate(const std::vector<Bytes>& rands) override {
    return with_profile([&](api::Client& c, const std::string& path) { return c.gsm_authenticate(path, rands); });
  }
  api::CallResult<api::ProfileProperties> subscriber() override {
    return with_profile([&](api::Client& c, const std::string& path) { return c.profile(path); });
  }

 private:
  template <class Call>
  auto with_profile(Call call) -> decltype(call(std::declval<api::Client&>(), std::string())) {
    if (!client_) {
      auto c = api::Client::connect(options_.bus_address);
      if (!c) return tl::unexpected(c.error());
      client_.emplace(std::move(*c));
    }
    std::string path;
    if (options_.profile) {
      path = *options_.profile;
    } else {
      auto manager = client_->manager();
      if (!manager) {
        client_.reset();  // mcimd or the bus is gone: connect afresh next time
        return tl::unexpected(manager.error());
      }
      if (manager->active_profile.empty() || manager->active_profile == "/")
        return tl::unexpected(api::CallError{"org.mcimd.Tre1.Error.InvalidState", "No profile is active"});
      path = manager->active_profile;
    }
    return forget(call(*client_, path));
  }

  // Errors that are not mcimd's own say the connection or the bus is at fault: start afresh.
  template <class R>
  R forget(R result) {
    if (!result && !result.error().name.starts_with("org.mcimd.Tre1.Error.")) client_.reset();
    return result;
  }

  const BridgeOptions& options_;
  std::optional<api::Client> client_;
};

void pause(std::chrono::milliseconds d) { ::poll(nullptr, 0, static_cast<int>(d.count())); }

const char* request_kind(const SimRequest& r) {
  if (std::holds_alternative<UmtsChallenge>(r.challenge)) return "UMTS-AUTH";
  if (std::holds_alternative<GsmChallenge>(r.challenge)) return "GSM-AUTH";
  return "IDENTITY";
}

class Session {
 public:
  Session(const BridgeOptions& options, ControlSocket& sock, Usim& usim)
      : options_(options), sock_(sock), usim_(usim) {}

  // Returns when wpa_supplicant is gone or `stop` is set.
  void run(const std::atomic<bool>& stop) {
    while (!stop) {
      while (!events_.empty() && !stop) {
        std::string event = std::move(events_.front());
        events_.pop_front();
        if (!handle(event)) return;
      }
      auto message = sock_.receive(options_.ping_interval);
      if (!message) {
        log::warning("Failed to read from wpa_supplicant: " + message.error().message + ", attaching again.");
        return;
      }
      if (*message) {
        // A reply nobody waits for (a late one after a timeout) is dropped.
        if (!(*message)->empty() && (*message)->front() == '<') events_.push_back(std::move(**message));
        continue;
      }
      if (stop) return;
      auto pong = sock_.request("PING", options_.reply_timeout, events_);
      if (!pong || *pong != "PONG") {
        log::warning("wpa_supplicant does not answer PING (" + (pong ? std::string("unexpected reply") : pong.error().message) +
                     "), attaching again.");
        return;
      }
    }
    // A clean stop: leave wpa_supplicant's monitor list at once rather than after failed sends.
    (void)sock_.request("DETACH", options_.reply_timeout, events_);
  }

 private:
  // False when the answer could not be delivered because wpa_supplicant is gone.
  bool handle(const std::string& event) {
    auto request = parse_event(event);
    if (!request) {
      log::warning("Failed to read a control interface event: " + request.error().message + ", ignoring.");
      return true;
    }
    if (!*request) return true;
    const SimRequest& r = **request;
    const std::string what = std::string(request_kind(r)) + " request of network " + std::to_string(r.network_id);
    if (std::holds_alternative<IdentityQuestion>(r.challenge)) return handle_identity(r.network_id, what);
    log::debug("Asking mcimd to answer " + what + ".");
    return deliver(answer(r, usim_), what);
  }

  // Only a network that authenticates with the MCIM (EAP-SIM, AKA, AKA') gets its identity.
  bool handle_identity(uint32_t network_id, const std::string& what) {
    auto methods =
        sock_.request("GET_NETWORK " + std::to_string(network_id) + " eap", options_.reply_timeout, events_);
    if (!methods) {
      log::warning("Failed to ask wpa_supplicant for the methods of network " + std::to_string(network_id) + ": " +
                   methods.error().message + ", attaching again.");
      return false;
    }
    auto a = answer_identity(network_id, *methods, usim_, options_.mnc_length);
    if (!a) {
      log::debug("Not answering " + what + ": its EAP methods are none of SIM, AKA and AKA'.");
      return true;
    }
    if (a->command.empty()) {
      log::warning("Failed to answer " + what + ": " + a->summary);
      return true;
    }
    return deliver(*a, what);
  }

  bool deliver(const Answer& a, const std::string& what) {
    if (a.failed)
      log::warning("Failed to answer " + what + ": " + a.summary);
    else
      log::info("Answered " + what + ": " + a.summary);
    auto reply = sock_.request(std::string_view(a.command.data(), a.command.size()), options_.reply_timeout, events_);
    if (!reply) {
      log::warning("Failed to hand the answer to wpa_supplicant: " + reply.error().message + ", attaching again.");
      return false;
    }
    if (*reply != "OK") log::warning("wpa_supplicant refused the answer to " + what + ", ignoring.");
    return true;
  }

  const BridgeOptions& options_;
  ControlSocket& sock_;
  Usim& usim_;
  std::deque<std::string> events_;
};

}  // namespace

int run_bridge(const BridgeOptions& options, const std::atomic<bool>& stop) {
  McimdUsim usim(options);
  bool waiting_logged = false;
  while (!stop) {
    auto sock = ControlSocket::connect(options.ctrl_path, options.socket_dir);
    if (!sock && sock.error().code == Code::InvalidArgument) {
      log::error("Failed to open the control socket: " + sock.error().message);
      return 1;
    }
    std::deque<std::string> events;
    Result<std::string> attached = sock ? sock->request("ATTACH", options.reply_timeout, events)
                                        : Result<std::string>(tl::unexpected(sock.error()));
    if (!attached || *attached != "OK") {
      if (!waiting_logged) {
        log::notice("Waiting for wpa_supplicant at " + options.ctrl_path.native() + " (" +
                    (attached ? std::string("ATTACH refused") : attached.error().message) + ").");
        waiting_logged = true;
      }
      pause(options.retry_interval);
      continue;
    }
    waiting_logged = false;
    log::info("Attached to wpa_supplicant at " + options.ctrl_path.native() + ".");
    Session session(options, *sock, usim);
    session.run(stop);
  }
  return 0;
}

}  // namespace mcimd::wpasim
