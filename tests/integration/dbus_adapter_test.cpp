// The D-Bus adapter on a private dbus-daemon, in front of a scripted FakeService that answers
// asynchronously from its own event loop. Driven the way clients drive mcimd: busctl, dbus-send,
// the built mcimctl, and a raw sd-bus connection where exact error names or odd calls matter.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "dbus-api/adapter.hpp"
#include "dbus-api/bus_filter.hpp"
#include "dbus-api/names.hpp"
#include "protocol/evidence.hpp"
#include "tests/support/bus_values.hpp"
#include "tests/support/dbus_daemon.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace mcimd::api {
namespace {

using nlohmann::json;
using test::DbusDaemon;
using test::DbusDaemonOptions;
using test::RunResult;
using test::read_say;

constexpr uid_t kNobody = 65534;  // no role at all

// A second existing account for the modem role: dbus-daemon drops connections from uids
// without a passwd entry (it resolves their groups), so an invented uid will not do.
uid_t modem_uid() {
  for (const char* name : {"daemon", "bin", "sys"})
    if (const passwd* pw = getpwnam(name); pw && pw->pw_uid != 0 && pw->pw_uid != kNobody) return pw->pw_uid;
  throw std::runtime_error("no system account to play the modem role");
}
const uid_t kModemUid = modem_uid();
const std::string kMcimctl = MCIMD_BINARY_DIR "/tools/mcimctl";
const std::string kXmlFile = MCIMD_SOURCE_DIR "/dbus-api/org.mcimd.Tre1.xml";
const std::string kPolicyFile = MCIMD_SOURCE_DIR "/packaging/dbus/org.mcimd.Tre1.conf";
const std::string kOfonoPolicyFile = MCIMD_SOURCE_DIR "/packaging/dbus/mcimd-ofono-compat.conf";

// ---- byte helpers ----

Bytes sequence(uint8_t first, std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(first + i);
  return b;
}

// RAND whose first byte selects the FakeService's outcome.
Bytes rand_for(uint8_t outcome) {
  Bytes r = sequence(0x10, 16);
  r[0] = outcome;
  return r;
}

constexpr uint8_t kSucceed = 0x01;
constexpr uint8_t kSyncFailure = 0x55;
constexpr uint8_t kMacFailure = 0xEE;
constexpr uint8_t kPlatformChanged = 0x66;
constexpr uint8_t kDropReply = 0x77;
constexpr uint8_t kThrow = 0x88;
constexpr uint8_t kReplyAtOnce = 0x99;

const Bytes kAutn = sequence(0xA0, 16);
const Bytes kAuts = Bytes(14, 0xA5);

// The FakeService's deterministic answers.
Bytes expected_res(const Bytes& rand) { return Bytes(rand.begin(), rand.begin() + 8); }
Bytes expected_ik(const Bytes& rand) { return Bytes(rand.rbegin(), rand.rend()); }
Bytes expected_sres(const Bytes& rand) { return Bytes(rand.begin(), rand.begin() + 4); }
Bytes expected_kc(const Bytes& rand) { return Bytes(rand.begin() + 8, rand.end()); }

SecureBytes secure(const Bytes& b) { return SecureBytes(b.begin(), b.end()); }

// ---- attestation fixtures ----

Bytes unhex(std::string_view text) {
  auto b = from_hex(text, "fixture");
  if (!b) throw std::runtime_error(b.error().message);
  return *b;
}

// Recorded from tpm2-tools 5.4 on swtpm: `tpm2_createak -G ecc -g sha256 -s ecdsa` public, and
// `tpm2_quote -l sha256:0,1,2+sha1:3 -q 0102 -g sha256` message and signature with all PCRs
// zero; `tpm2_createek -G ecc -u` public.
const Bytes kAkPublic = unhex(
    "00580023000b00050072000000100018000b0003001000202dddf8733bab11ce5a52ea29af7187b0c1b78c20473bba2566fabfc4d694b3a1"
    "00206077432d76e84db300188d73b765f1ef88bebc5f78b703701058e0b5330f888a");
const Bytes kQuoteMessage = unhex(
    "ff54434780180022000b4d63630a603b3bbd6526eca06342686ec5b1e4af3b02605226914f88a9f76b200002010200000000000004330000"
    "00010000000001201910230016363600000002000b0307000000040308000000205b517952cbe9c4c147bc3f3434f9d82409e76d09ea5890"
    "5aefe7fb5415912d9a");
const Bytes kQuoteSignature = unhex(
    "0018000b0020570e7b5df1d8c475f2bbd7ee0d4132c132f5b9916f23a86e5e0b43b02d1d19a60020cb2b8b8d63739b48a9f39618b2e9f399"
    "19488286d731b11db74330812f7202b2");
const Bytes kEkPublic = unhex(
    "007a0023000b000300b20020837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa000600800043001000030010"
    "002083800b6b54f48a1b51418bc8993157a42944117616fc64d6029af38ad972631f0020e5d94edc068bfad3d4140d8fa15d3288b8b047f5"
    "da5c8137ca753d8b12a53052");
const Bytes kEkCertificate = {0x30, 0x03, 0x02, 0x01, 0x07};  // DER shaped; the adapter does not parse it
const Bytes kQuoteNonce = {0x01, 0x02};                      // the recorded quote's qualifying data

// The FakeService's attestation outcomes: the first nonce byte (or the last byte of the
// encrypted secret) selects them.
constexpr uint8_t kTrusted = 0x01;
constexpr uint8_t kNotTrusted = 0x02;
constexpr uint8_t kTpmFails = 0xEE;

// The secret the FakeService "releases" for a credential blob.
Bytes expected_secret(const Bytes& blob) { return Bytes(blob.rbegin(), blob.rend()); }

protocol::PlatformReport report_for(const Bytes& nonce) {
  protocol::PlatformReport report;
  report.nonce = nonce;
  report.policy_digest = Bytes(32, 0xAB);
  report.trusted = nonce.at(0) != kNotTrusted;
  report.checks = {{"signature", true, ""},
                   {"pcr7", report.trusted, report.trusted ? "" : "PCR 7 differs from the reference"}};
  report.pcrs = {protocol::PcrBank{"sha256", {{7, Bytes(32, 0)}}}};
  return report;
}

// ---- FakeService ----

ProfileInfo make_profile(uint32_t index, std::string iccid, ProfileState state, ProfileClass profile_class) {
  ProfileInfo p;
  p.id = "profile-" + std::to_string(index);
  p.index = index;
  p.iccid = std::move(iccid);
  p.imsi = "00101000000000" + std::to_string(index);
  p.operator_id = "operator-" + std::to_string(index);
  p.state = state;
  p.profile_class = profile_class;
  return p;
}

// Answers from a deferred event source on the loop thread, so every reply takes the adapter's
// asynchronous path. Outcomes are scripted by the first RAND byte.
class FakeService final : public Service {
  std::vector<PcrPolicyInfo> policies_;

 public:
  explicit FakeService(sd_event* event) : event_(event) {
    profiles_ = {make_profile(1, "8988211000000000011", ProfileState::Enabled, ProfileClass::Operational),
                 make_profile(2, "8988211000000000022", ProfileState::Disabled, ProfileClass::Bootstrap)};
    active_ = "profile-1";
  }

  void set_listener(ServiceListener* listener) override { listener_ = listener; }
  std::vector<ProfileInfo> list_profiles() const override { return profiles_; }
  std::optional<ProfileInfo> find_profile(uint32_t index) const override {
    for (const auto& p : profiles_)
      if (p.index == index) return p;
    return std::nullopt;
  }
  std::string active_profile() const override { return active_; }
  PlatformState platform_state() const override { return platform_state_; }

  void install_profile(SecureString yaml, Reply<ProfileInfo> reply) override {
    std::string text(yaml.begin(), yaml.end());
    {
      std::lock_guard lock(mutex_);
      documents_.push_back(text);
    }
    later([this, text, reply] {
      std::smatch m;
      if (!std::regex_search(text, m, std::regex("iccid: *\"?([0-9]+)")))
        return reply(fail(Code::InvalidArgument, "document has no iccid"));
      auto info = make_profile(next_index_++, m[1].str(), ProfileState::Disabled, ProfileClass::Operational);
      add(info);
      reply(info);
    });
  }

  void enable_profile(const std::string& id, Reply<void> reply) override {
    later([this, id, reply] {
      auto* p = by_id(id);
      if (!p) return reply(fail(Code::NotFound, "no profile " + id));
      p->state = ProfileState::Enabled;
      active_ = id;
      if (listener_) listener_->profile_changed(*p);
      if (listener_) listener_->manager_changed();
      reply({});
    });
  }

  void disable_profile(const std::string& id, Reply<void> reply) override {
    later([this, id, reply] {
      auto* p = by_id(id);
      if (!p) return reply(fail(Code::NotFound, "no profile " + id));
      if (p->profile_class == ProfileClass::Bootstrap)
        return reply(fail(Code::InvalidState, "the bootstrap profile stays enabled"));
      p->state = ProfileState::Disabled;
      if (active_ == id) active_.clear();
      if (listener_) listener_->profile_changed(*p);
      if (listener_) listener_->manager_changed();
      reply({});
    });
  }

  void delete_profile(const std::string& id, Reply<void> reply) override {
    later([this, id, reply] {
      auto* p = by_id(id);
      if (!p) return reply(fail(Code::NotFound, "no profile " + id));
      remove(p->index);
      reply({});
    });
  }

  void umts_authenticate(const std::string&, Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply) override {
    answer_umts(std::move(rand), std::move(autn), std::move(reply));
  }
  void ims_authenticate(const std::string&, Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply) override {
    answer_umts(std::move(rand), std::move(autn), std::move(reply));
  }

  void gsm_authenticate(const std::string&, std::vector<Bytes> rands,
                        Reply<std::vector<GsmAuthResult>> reply) override {
    later([rands, reply] {
      std::vector<GsmAuthResult> out;
      for (const auto& r : rands) out.push_back({secure(expected_sres(r)), secure(expected_kc(r))});
      reply(std::move(out));
    });
  }

  void get_endorsement(const std::string& ek_type, Reply<EndorsementData> reply) override {
    record("GetEndorsement " + ek_type);
    later([ek_type, reply] {
      EndorsementData data;
      data.ek_public = kEkPublic;
      // The RSA EK of this TPM has no certificate.
      if (ek_type == "ecc") data.ek_certificate = kEkCertificate;
      data.ak_public = kAkPublic;
      reply(std::move(data));
    });
  }

  void activate_credential(const std::string& ek_type, Bytes credential_blob, Bytes encrypted_secret,
                           Reply<SecureBytes> reply) override {
    record("ActivateCredential " + ek_type);
    later([credential_blob, encrypted_secret, reply] {
      if (encrypted_secret.back() == kTpmFails)
        return reply(fail(Code::TpmFailure, "TPM2_ActivateCredential: the credential's integrity check failed"));
      reply(secure(expected_secret(credential_blob)));
    });
  }

  void get_evidence(Bytes nonce, Reply<std::string> reply) override {
    record("GetEvidence " + to_hex(nonce));
    later([nonce, reply] {
      if (nonce.at(0) == kTpmFails) return reply(fail(Code::TpmFailure, "TPM2_Quote failed"));
      protocol::Evidence e;
      e.nonce = nonce;
      e.quote_message = kQuoteMessage;
      e.quote_signature = kQuoteSignature;
      e.pcrs = {protocol::PcrBank{"sha256", {{0, Bytes(32, 0)}, {1, Bytes(32, 0)}, {2, Bytes(32, 0)}}},
                protocol::PcrBank{"sha1", {{3, Bytes(20, 0)}}}};
      e.ak_public = kAkPublic;
      e.ek_certificate = kEkCertificate;
      reply(protocol::to_json(e));
    });
  }

  void validate_platform(std::string signed_policy, Bytes nonce, Reply<PlatformReport> reply) override {
    record("ValidatePlatform " + signed_policy + " " + to_hex(nonce));
    later([nonce, reply] {
      if (nonce.at(0) == kTpmFails) return reply(fail(Code::TpmFailure, "TPM2_Quote failed"));
      reply(PlatformReport{protocol::to_json(report_for(nonce)), kQuoteMessage, kQuoteSignature});
    });
  }

  // A document starting "bad" is refused as a policy of another authority; any other is kept
  // under its first four characters as id.
  void add_pcr_policy(std::string document, Reply<std::string> reply) override {
    record("AddPcrPolicy " + document);
    later([this, document, reply] {
      if (document.starts_with("bad")) return reply(fail(Code::NotAuthorized, "not signed by the configured authority"));
      policies_.push_back(PcrPolicyInfo{document.substr(0, 4), "sha256:7", policies_.empty()});
      reply(document.substr(0, 4));
    });
  }
  void list_pcr_policies(Reply<std::vector<PcrPolicyInfo>> reply) override {
    record("ListPcrPolicies");
    later([this, reply] { reply(policies_); });
  }

  // Provisioning: the request echoes the session and nonce; a package "refuse:<Code>" is refused
  // with that code, any other installs profile 1 and answers a receipt naming the package.
  void request_package(std::string session, Bytes operator_nonce, Reply<std::string> reply) override {
    record("RequestPackage " + session + " " + to_hex(operator_nonce));
    later([session, operator_nonce, reply] {
      reply(nlohmann::json{{"session", session}, {"operator_nonce", to_hex(operator_nonce)}}.dump());
    });
  }
  void install_package(std::string package, Reply<PackageInstall> reply) override {
    record("InstallPackage " + std::to_string(package.size()));
    later([this, package, reply] {
      if (package.starts_with("refuse:")) {
        const std::string name = package.substr(7);
        auto code = code_from_error_name(std::string(kErrorPrefix) + name);
        return reply(fail(code.value_or(Code::Internal), "scripted refusal " + name));
      }
      reply(PackageInstall{profiles_.front(), nlohmann::json{{"package_bytes", package.size()}}.dump()});
    });
  }

  // Lifecycle: a change of subscription answers like an install; confirming a profile answers
  // a receipt naming it; the deletion receipts are two fixed texts.
  void change_subscription(std::string release, std::string package, Reply<PackageInstall> reply) override {
    record("ChangeSubscription " + std::to_string(release.size()) + " " + std::to_string(package.size()));
    later([this, reply] { reply(PackageInstall{profiles_.front(), "{}"}); });
  }
  void confirm_profile(const std::string& id, Reply<std::string> reply) override {
    record("ConfirmProfile " + id);
    later([id, reply] { reply(nlohmann::json{{"confirmed", id}}.dump()); });
  }
  void deletion_receipts(Reply<std::vector<std::string>> reply) override {
    record("DeletionReceipts");
    later([reply] { reply(std::vector<std::string>{"{\"r\":1}", "{\"r\":2}"}); });
  }

  void apply_command(std::string command, Reply<std::string> reply) override {
    record("ApplyCommand " + std::to_string(command.size()));
    later([reply] { reply(std::string("{}")); });
  }
  void request_fallback(Reply<void> reply) override {
    record("RequestFallback");
    later([reply] { reply({}); });
  }

  // Called on the loop thread by tests.
  void add(const ProfileInfo& info) {
    profiles_.push_back(info);
    if (listener_) listener_->profile_added(info);
  }
  void remove(uint32_t index) {
    auto it = std::find_if(profiles_.begin(), profiles_.end(), [&](auto& p) { return p.index == index; });
    if (it == profiles_.end()) return;
    ProfileInfo gone = *it;
    profiles_.erase(it);
    bool was_active = active_ == gone.id;
    if (was_active) active_.clear();
    if (listener_) listener_->profile_removed(gone);
    if (was_active && listener_) listener_->manager_changed();
  }
  void set_platform_state(PlatformState state) {
    platform_state_ = state;
    if (listener_) listener_->manager_changed();
  }

  // Any thread.
  std::vector<std::string> documents() const {
    std::lock_guard lock(mutex_);
    return documents_;
  }
  // The attestation calls that reached the service: "<Method> <argument> ...".
  std::vector<std::string> attestation_calls() const {
    std::lock_guard lock(mutex_);
    return attestation_calls_;
  }

 private:
  void record(std::string call) {
    std::lock_guard lock(mutex_);
    attestation_calls_.push_back(std::move(call));
  }

  void answer_umts(Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply) {
    uint8_t outcome = rand.at(0);
    if (outcome == kThrow) throw std::runtime_error("scripted failure inside the service");
    auto answer = [rand, autn, reply, outcome] {
      switch (outcome) {
        case kSyncFailure: {
          UmtsAuthResult r;
          r.auts = kAuts;
          return reply(r);
        }
        case kMacFailure:
          return reply(fail(Code::MacFailure, "AUTN MAC does not verify"));
        case kPlatformChanged:
          return reply(fail(Code::PlatformStateChanged, "PCR 7 no longer matches the policy"));
        default: {
          UmtsAuthResult r;
          r.res = secure(expected_res(rand));
          r.ck = secure(autn);
          r.ik = secure(expected_ik(rand));
          return reply(r);
        }
      }
    };
    if (outcome == kDropReply) return;  // the Reply goes out of scope unanswered
    if (outcome == kReplyAtOnce) return answer();
    later(answer);
  }

  ProfileInfo* by_id(const std::string& id) {
    for (auto& p : profiles_)
      if (p.id == id) return &p;
    return nullptr;
  }

  struct Deferred {
    SdEventSource source;
    std::function<void()> work;
    bool done = false;
  };

  void later(std::function<void()> work) {
    deferred_.remove_if([](const auto& d) { return d->done; });
    auto d = std::make_unique<Deferred>();
    d->work = std::move(work);
    sd_event_source* raw = nullptr;
    int r = sd_event_add_defer(
        event_, &raw,
        [](sd_event_source* s, void* userdata) -> int {
          auto* self = static_cast<Deferred*>(userdata);
          sd_event_source_set_enabled(s, SD_EVENT_OFF);
          self->done = true;
          auto work = std::move(self->work);
          work();
          return 0;
        },
        d.get());
    if (r < 0) throw std::runtime_error("sd_event_add_defer failed");
    d->source.reset(raw);
    deferred_.push_back(std::move(d));
  }

  sd_event* event_;
  ServiceListener* listener_ = nullptr;
  std::vector<ProfileInfo> profiles_;
  std::string active_;
  PlatformState platform_state_ = PlatformState::Trusted;
  uint32_t next_index_ = 3;
  std::list<std::unique_ptr<Deferred>> deferred_;
  mutable std::mutex mutex_;
  std::vector<std::string> documents_;
  std::vector<std::string> attestation_calls_;
};

// ---- the adapter on its own thread and event loop ----

AccessPolicy test_policy() {
  AccessPolicy p;
  p.modem_uids = {kModemUid};
  return p;
}

class AdapterThread {
 public:
  // With `ofono_compat`, the adapter also serves the oFono-shaped objects as org.ofono.
  explicit AdapterThread(const std::string& address, AccessPolicy policy = test_policy(), bool ofono_compat = false) {
    std::promise<std::string> ready;
    auto started = ready.get_future();
    BusAdapterOptions options{std::move(policy), /*request_name=*/true, /*ofono_compat=*/std::nullopt};
    if (ofono_compat) options.ofono_compat = OfonoCompatOptions{};
    thread_ = std::thread([this, address, options, &ready] { loop(address, options, ready); });
    std::string problem = started.get();
    if (!problem.empty()) {
      stop_ = true;
      thread_.join();
      throw std::runtime_error(problem);
    }
  }

  ~AdapterThread() {
    stop_ = true;
    thread_.join();
  }

  // Runs `task` on the loop thread and waits for it.
  void on_loop(std::function<void(FakeService&)> task) {
    std::packaged_task<void()> job([this, task] { task(*service_); });
    auto done = job.get_future();
    {
      std::lock_guard lock(mutex_);
      tasks_.push_back(std::move(job));
    }
    done.get();
  }

  FakeService& service() { return *service_; }  // only for thread-safe accessors

 private:
  void loop(const std::string& address, const BusAdapterOptions& options, std::promise<std::string>& ready) {
    sd_event* raw_event = nullptr;
    sd_bus* raw_bus = nullptr;
    if (sd_event_new(&raw_event) < 0) return ready.set_value("sd_event_new failed");
    SdEvent event(raw_event);
    if (sd_bus_new(&raw_bus) < 0) return ready.set_value("sd_bus_new failed");
    SdBus bus(raw_bus);
    if (sd_bus_set_address(bus.get(), address.c_str()) < 0 || sd_bus_set_bus_client(bus.get(), 1) < 0 ||
        sd_bus_start(bus.get()) < 0 || sd_bus_attach_event(bus.get(), event.get(), SD_EVENT_PRIORITY_NORMAL) < 0)
      return ready.set_value("cannot connect to the test bus");
    service_ = std::make_unique<FakeService>(event.get());
    auto adapter = BusAdapter::create(bus.get(), *service_, options);
    if (!adapter) return ready.set_value(adapter.error().describe());
    ready.set_value("");
    while (!stop_) {
      sd_event_run(event.get(), 10'000 /* µs */);
      std::deque<std::packaged_task<void()>> tasks;
      {
        std::lock_guard lock(mutex_);
        tasks.swap(tasks_);
      }
      for (auto& t : tasks) t();
    }
    adapter->reset();
    service_.reset();
    // Let the answers of dropped calls leave before the connection closes.
    sd_bus_flush(bus.get());
    bus.reset();
    event.reset();
  }

  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<FakeService> service_;
  std::mutex mutex_;
  std::deque<std::packaged_task<void()>> tasks_;
};

// ---- a raw client, for exact error names and deliberately odd calls ----

struct RawReply {
  std::string error_name;  // empty on success
  std::string error_message;
  SdBusMessage message;
};

class RawClient {
 public:
  explicit RawClient(const std::string& address) {
    sd_bus* raw = nullptr;
    if (sd_bus_new(&raw) < 0) throw std::runtime_error("sd_bus_new");
    bus_.reset(raw);
    if (sd_bus_set_address(bus_.get(), address.c_str()) < 0 || sd_bus_set_bus_client(bus_.get(), 1) < 0 ||
        sd_bus_start(bus_.get()) < 0)
      throw std::runtime_error("cannot connect to the test bus");
  }

  // `append` fills the call's arguments.
  RawReply call(const std::string& path, const char* interface, const char* member,
                const std::function<void(sd_bus_message*)>& append = {}) {
    sd_bus_message* m = nullptr;
    if (sd_bus_message_new_method_call(bus_.get(), &m, kBusName, path.c_str(), interface, member) < 0)
      throw std::runtime_error("new_method_call");
    SdBusMessage call(m);
    if (append) append(call.get());
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call(bus_.get(), call.get(), 10'000'000, &error, &reply);
    RawReply out;
    if (r < 0) {
      out.error_name = error.name ? error.name : "errno";
      out.error_message = error.message ? error.message : strerror(-r);
    }
    out.message.reset(reply);
    sd_bus_error_free(&error);
    return out;
  }

  RawReply umts(const std::string& path, const Bytes& rand, const Bytes& autn) {
    return call(path, kUsimInterface, "UmtsAuthenticate", [&](sd_bus_message* m) {
      sd_bus_message_append_array(m, 'y', rand.data(), rand.size());
      sd_bus_message_append_array(m, 'y', autn.data(), autn.size());
    });
  }

  RawReply gsm(const std::string& path, const std::vector<Bytes>& rands) {
    return call(path, kUsimInterface, "GsmAuthenticate", [&](sd_bus_message* m) {
      sd_bus_message_open_container(m, 'a', "ay");
      for (const auto& r : rands) sd_bus_message_append_array(m, 'y', r.data(), r.size());
      sd_bus_message_close_container(m);
    });
  }

  std::string introspect(const std::string& path) {
    auto reply = call(path, "org.freedesktop.DBus.Introspectable", "Introspect");
    if (!reply.error_name.empty()) throw std::runtime_error("Introspect failed: " + reply.error_message);
    const char* xml = nullptr;
    sd_bus_message_read(reply.message.get(), "s", &xml);
    return xml;
  }

  sd_bus* bus() { return bus_.get(); }

 private:
  SdBus bus_;
};

// Records ObjectManager and Properties signals from mcimd on its own connection.
class SignalRecorder {
 public:
  explicit SignalRecorder(const std::string& address) : client_(address) {
    sd_bus_slot* slot = nullptr;
    if (sd_bus_match_signal(client_.bus(), &slot, kBusName, nullptr, nullptr, nullptr, record, this) < 0)
      throw std::runtime_error("cannot subscribe to signals");
    slot_.reset(slot);
  }

  struct Signal {
    std::string path, interface, member;
    std::string object;                                    // first argument when it is an object path
    std::set<std::string> names;                           // interface names (Interfaces*) or changed property names
    std::map<std::string, std::string> string_properties;  // Profile properties of InterfacesAdded
  };

  // Processes incoming messages until `pred` holds for one recorded signal, or 10 s pass.
  std::optional<Signal> wait_for(const std::function<bool(const Signal&)>& pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& s : signals_)
        if (pred(s)) return s;
      int r = sd_bus_process(client_.bus(), nullptr);
      if (r < 0) return std::nullopt;
      if (r == 0) sd_bus_wait(client_.bus(), 100'000);
    }
    return std::nullopt;
  }

 private:
  static int record(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<SignalRecorder*>(userdata);
    Signal s;
    s.path = sd_bus_message_get_path(m) ? sd_bus_message_get_path(m) : "";
    s.interface = sd_bus_message_get_interface(m) ? sd_bus_message_get_interface(m) : "";
    s.member = sd_bus_message_get_member(m) ? sd_bus_message_get_member(m) : "";
    if (s.member == "InterfacesAdded") {
      const char* object = nullptr;
      sd_bus_message_read(m, "o", &object);
      s.object = object;
      sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
      while (sd_bus_message_enter_container(m, 'e', "sa{sv}") > 0) {
        const char* interface = nullptr;
        sd_bus_message_read(m, "s", &interface);
        s.names.insert(interface);
        sd_bus_message_enter_container(m, 'a', "{sv}");
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
          const char* name = nullptr;
          sd_bus_message_read(m, "s", &name);
          const char* contents = nullptr;
          char type = 0;
          sd_bus_message_peek_type(m, &type, &contents);
          if (contents && std::string_view(contents) == "s") {
            const char* value = nullptr;
            sd_bus_message_read(m, "v", "s", &value);
            s.string_properties[name] = value;
          } else {
            sd_bus_message_skip(m, "v");
          }
          sd_bus_message_exit_container(m);
        }
        sd_bus_message_exit_container(m);
        sd_bus_message_exit_container(m);
      }
    } else if (s.member == "InterfacesRemoved") {
      const char* object = nullptr;
      sd_bus_message_read(m, "o", &object);
      s.object = object;
      char** names = nullptr;
      sd_bus_message_read_strv(m, &names);
      for (char** n = names; n && *n; ++n) {
        s.names.insert(*n);
        free(*n);
      }
      free(names);
    } else if (s.member == "PropertiesChanged") {
      const char* interface = nullptr;
      sd_bus_message_read(m, "s", &interface);
      s.object = interface;
      sd_bus_message_enter_container(m, 'a', "{sv}");
      while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
        const char* name = nullptr;
        sd_bus_message_read(m, "s", &name);
        s.names.insert(name);
        sd_bus_message_skip(m, "v");
        sd_bus_message_exit_container(m);
      }
      sd_bus_message_exit_container(m);
      char** invalidated = nullptr;
      sd_bus_message_read_strv(m, &invalidated);
      for (char** n = invalidated; n && *n; ++n) {
        s.names.insert(*n);
        free(*n);
      }
      free(invalidated);
    }
    self->signals_.push_back(std::move(s));
    return 0;
  }

  RawClient client_;
  SdBusSlot slot_;
  std::vector<Signal> signals_;
};

// When started with MCIMD_TEST_LISTEN_ADDRESS set, this binary runs no tests: it subscribes to
// mcimd's signals on that bus, prints READY, then the member name of every signal it receives
// for two seconds. The bus policy test starts it under other uids.
void listen_for_signals(const char* address) {
  RawClient client(address);
  auto print = [](sd_bus_message* m, void*, sd_bus_error*) -> int {
    std::printf("%s\n", sd_bus_message_get_member(m));
    std::fflush(stdout);
    return 0;
  };
  if (sd_bus_match_signal(client.bus(), nullptr, kBusName, nullptr, nullptr, nullptr, print, nullptr) < 0)
    std::_Exit(1);
  std::printf("READY\n");
  std::fflush(stdout);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    int r = sd_bus_process(client.bus(), nullptr);
    if (r < 0) break;
    if (r == 0) sd_bus_wait(client.bus(), 100'000);
  }
}

[[maybe_unused]] const bool kListenerMode = [] {
  if (const char* address = std::getenv("MCIMD_TEST_LISTEN_ADDRESS")) {
    listen_for_signals(address);
    std::_Exit(0);
  }
  return false;
}();

// ---- command helpers ----

std::vector<std::string> as_user(uid_t uid, std::vector<std::string> argv) {
  std::vector<std::string> out = {"setpriv", "--reuid=" + std::to_string(uid), "--regid=" + std::to_string(uid),
                                  "--clear-groups"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

// busctl's "ay" arguments: the length, then each byte.
std::vector<std::string> ay(const Bytes& b) {
  std::vector<std::string> out = {std::to_string(b.size())};
  for (uint8_t v : b) out.push_back(std::to_string(v));
  return out;
}

std::string hex(const Bytes& b) { return to_hex(b); }

Bytes json_bytes(const json& j) {
  Bytes out;
  for (const auto& v : j) out.push_back(v.get<uint8_t>());
  return out;
}

class TheBusAdapter : public ::testing::Test {
 protected:
  DbusDaemon bus_;
  AdapterThread adapter_{bus_.address()};

  std::vector<std::string> busctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"busctl", "--address=" + bus_.address(), "--timeout=10"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  RunResult run_busctl(std::vector<std::string> args) { return test::run(busctl(std::move(args))); }
  RunResult busctl_call(const std::string& path, const std::string& interface, const std::string& member,
                        std::vector<std::string> args = {}) {
    std::vector<std::string> argv = {"--json=short", "call", kBusName, path, interface, member};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_busctl(argv);
  }
  std::vector<std::string> mcimctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {kMcimctl, "--bus-address", bus_.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  RunResult run_mcimctl(std::vector<std::string> args) { return test::run(mcimctl(std::move(args))); }

  std::vector<std::string> umts_args(const Bytes& rand, const Bytes& autn) {
    std::vector<std::string> args = {"ayay"};
    for (auto& s : ay(rand)) args.push_back(s);
    for (auto& s : ay(autn)) args.push_back(s);
    return args;
  }

  // The good call that shows the adapter still serves after a refused one.
  void expect_still_serving() {
    RawClient client(bus_.address());
    auto reply = client.umts(profile_path(1), rand_for(kSucceed), kAutn);
    ASSERT_EQ(reply.error_name, "") << reply.error_message;
    EXPECT_EQ(read_say(reply.message.get()).size(), 3u);
  }
};

// ---- listing and properties ----

TEST_F(TheBusAdapter, ListsProfilesAsObjectPathsInIndexOrder) {
  auto r = busctl_call(kRootPath, kManagerInterface, "ListProfiles");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = json::parse(r.out);
  EXPECT_EQ(doc["type"], "ao");
  EXPECT_EQ(doc["data"][0], json::array({"/org/mcimd/Tre1/Profile/1", "/org/mcimd/Tre1/Profile/2"}));
}

TEST_F(TheBusAdapter, ServesProfileAndManagerProperties) {
  auto iccid = run_busctl({"get-property", kBusName, profile_path(2), kProfileInterface, "Iccid"});
  ASSERT_EQ(iccid.exit_code, 0) << iccid.err;
  EXPECT_EQ(iccid.out, "s \"8988211000000000022\"\n");
  auto all = run_busctl({"--json=short", "call", kBusName, profile_path(2), "org.freedesktop.DBus.Properties", "GetAll",
                         "s", kProfileInterface});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  auto props = json::parse(all.out)["data"][0];
  EXPECT_EQ(props["Imsi"]["data"], "001010000000002");
  EXPECT_EQ(props["OperatorId"]["data"], "operator-2");
  EXPECT_EQ(props["State"]["data"], "disabled");
  EXPECT_EQ(props["Class"]["data"], "bootstrap");

  auto active = run_busctl({"get-property", kBusName, kRootPath, kManagerInterface, "ActiveProfile"});
  EXPECT_EQ(active.out, "o \"/org/mcimd/Tre1/Profile/1\"\n") << active.err;
  auto platform = run_busctl({"get-property", kBusName, kRootPath, kManagerInterface, "PlatformState"});
  EXPECT_EQ(platform.out, "s \"trusted\"\n") << platform.err;
}

TEST_F(TheBusAdapter, ServesAProfileAsItIsAtEachCallAndNotFoundOnceItIsGone) {
  auto property = [&](const char* name) {
    return run_busctl({"get-property", kBusName, profile_path(2), kProfileInterface, name});
  };
  EXPECT_EQ(property("State").out, "s \"disabled\"\n");
  auto enable = run_mcimctl({"enable", "2"});
  ASSERT_EQ(enable.exit_code, 0) << enable.err;
  EXPECT_EQ(property("State").out, "s \"enabled\"\n");

  adapter_.on_loop([](FakeService& s) { s.remove(2); });
  auto gone = property("Iccid");
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("No profile at /org/mcimd/Tre1/Profile/2"), std::string::npos) << gone.err;

  // Another profile at the same index is a new object.
  adapter_.on_loop([](FakeService& s) { s.add(make_profile(2, "8988211000000000029", ProfileState::Disabled, ProfileClass::Operational)); });
  EXPECT_EQ(property("Iccid").out, "s \"8988211000000000029\"\n");
  EXPECT_EQ(property("Class").out, "s \"operational\"\n");
}

TEST_F(TheBusAdapter, ReportsNoActiveProfileAsTheRootPath) {
  adapter_.on_loop([](FakeService& s) { s.remove(1); });
  auto active = run_busctl({"get-property", kBusName, kRootPath, kManagerInterface, "ActiveProfile"});
  EXPECT_EQ(active.out, "o \"/\"\n") << active.err;
}

TEST_F(TheBusAdapter, IsListedAndShownByMcimctl) {
  auto list = run_mcimctl({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("INDEX"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("8988211000000000011"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("8988211000000000022"), std::string::npos) << list.out;

  auto json_list = run_mcimctl({"list", "--json"});
  ASSERT_EQ(json_list.exit_code, 0) << json_list.err;
  auto profiles = json::parse(json_list.out)["profiles"];
  ASSERT_EQ(profiles.size(), 2u);
  EXPECT_EQ(profiles[0]["path"], "/org/mcimd/Tre1/Profile/1");
  EXPECT_EQ(profiles[0]["active"], true);
  EXPECT_EQ(profiles[1]["class"], "bootstrap");
  EXPECT_EQ(profiles[1]["active"], false);

  auto show = run_mcimctl({"--json", "show", "/org/mcimd/Tre1/Profile/2"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  auto p = json::parse(show.out);
  EXPECT_EQ(p["index"], 2);
  EXPECT_EQ(p["iccid"], "8988211000000000022");
  EXPECT_EQ(p["imsi"], "001010000000002");
  EXPECT_EQ(p["operator_id"], "operator-2");
  EXPECT_EQ(p["state"], "disabled");

  auto text = run_mcimctl({"show", "1"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("ICCID:     8988211000000000011"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Active:    yes"), std::string::npos) << text.out;

  auto status = run_mcimctl({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(json::parse(status.out),
            (json{{"active_profile", "/org/mcimd/Tre1/Profile/1"}, {"platform_state", "trusted"}}));
}

TEST_F(TheBusAdapter, IsReachedByMcimctlThroughTheSystemBusVariable) {
  auto r = test::run({kMcimctl, "--json", "status"}, {{"DBUS_SYSTEM_BUS_ADDRESS", bus_.address()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["platform_state"], "trusted");
}

TEST_F(TheBusAdapter, ListsProfilesThroughTheObjectManager) {
  auto r = busctl_call(kRootPath, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto objects = json::parse(r.out)["data"][0];
  ASSERT_EQ(objects.size(), 2u) << r.out;
  for (const char* path : {"/org/mcimd/Tre1/Profile/1", "/org/mcimd/Tre1/Profile/2"}) {
    ASSERT_TRUE(objects.contains(path)) << r.out;
    EXPECT_TRUE(objects[path].contains(kUsimInterface));
    EXPECT_TRUE(objects[path][kProfileInterface].contains("Iccid"));
  }
  EXPECT_EQ(objects["/org/mcimd/Tre1/Profile/1"][kProfileInterface]["State"]["data"], "enabled");
}

// ---- authentication ----

TEST_F(TheBusAdapter, AnswersUmtsAuthenticateWithResCkAndIk) {
  Bytes rand = rand_for(kSucceed);
  auto r = busctl_call(profile_path(1), kUsimInterface, "UmtsAuthenticate", umts_args(rand, kAutn));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = json::parse(r.out);
  EXPECT_EQ(doc["type"], "a{say}");
  auto dict = doc["data"][0];
  ASSERT_EQ(dict.size(), 3u) << r.out;
  EXPECT_EQ(json_bytes(dict["RES"]), expected_res(rand));
  EXPECT_EQ(json_bytes(dict["CK"]), kAutn);
  EXPECT_EQ(json_bytes(dict["IK"]), expected_ik(rand));

  auto ctl = run_mcimctl({"authenticate", "1", "--rand", hex(rand), "--autn", hex(kAutn)});
  ASSERT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_EQ(ctl.out,
            "res: " + hex(expected_res(rand)) + "\nck: " + hex(kAutn) + "\nik: " + hex(expected_ik(rand)) + "\n");
}

TEST_F(TheBusAdapter, AnswersASynchronisationFailureWithAutsOnly) {
  Bytes rand = rand_for(kSyncFailure);
  auto r = busctl_call(profile_path(1), kUsimInterface, "UmtsAuthenticate", umts_args(rand, kAutn));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto dict = json::parse(r.out)["data"][0];
  ASSERT_EQ(dict.size(), 1u) << r.out;
  EXPECT_EQ(json_bytes(dict["AUTS"]), kAuts);

  auto ctl = run_mcimctl({"--json", "authenticate", "1", "--rand", hex(rand), "--autn", hex(kAutn)});
  ASSERT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_EQ(json::parse(ctl.out), (json{{"auts", hex(kAuts)}}));
}

TEST_F(TheBusAdapter, AnswersImsAuthenticateLikeUmts) {
  Bytes rand = rand_for(kSucceed);
  auto r = busctl_call(profile_path(2), kUsimInterface, "ImsAuthenticate", umts_args(rand, kAutn));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto dict = json::parse(r.out)["data"][0];
  EXPECT_EQ(json_bytes(dict["RES"]), expected_res(rand));

  auto ctl = run_mcimctl({"--json", "authenticate", "2", "--ims", "--rand", hex(rand), "--autn", hex(kAutn)});
  ASSERT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_EQ(json::parse(ctl.out)["ik"], hex(expected_ik(rand)));
}

TEST_F(TheBusAdapter, AnswersGsmAuthenticateWithOneDictionaryPerRand) {
  Bytes r1 = sequence(0x20, 16), r2 = sequence(0x40, 16);
  std::vector<std::string> args = {"aay", "2"};
  for (auto& s : ay(r1)) args.push_back(s);
  for (auto& s : ay(r2)) args.push_back(s);
  auto r = busctl_call(profile_path(1), kUsimInterface, "GsmAuthenticate", args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = json::parse(r.out);
  EXPECT_EQ(doc["type"], "aa{say}");
  auto list = doc["data"][0];
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(json_bytes(list[0]["SRES"]), expected_sres(r1));
  EXPECT_EQ(json_bytes(list[0]["Kc"]), expected_kc(r1));
  EXPECT_EQ(json_bytes(list[1]["SRES"]), expected_sres(r2));
  EXPECT_EQ(list[1].size(), 2u);

  auto ctl = run_mcimctl({"--json", "gsm-authenticate", "1", "--rand", hex(r1), "--rand", hex(r2)});
  ASSERT_EQ(ctl.exit_code, 0) << ctl.err;
  auto results = json::parse(ctl.out)["results"];
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1]["kc"], hex(expected_kc(r2)));
  auto text = run_mcimctl({"gsm-authenticate", "1", "--rand", hex(r1)});
  EXPECT_EQ(text.out, "rand 1: sres=" + hex(expected_sres(r1)) + " kc=" + hex(expected_kc(r1)) + "\n") << text.err;
}

TEST_F(TheBusAdapter, AnswersASynchronousServiceReplyToo) {
  RawClient client(bus_.address());
  auto reply = client.umts(profile_path(1), rand_for(kReplyAtOnce), kAutn);
  ASSERT_EQ(reply.error_name, "") << reply.error_message;
  EXPECT_EQ(read_say(reply.message.get())["RES"], expected_res(rand_for(kReplyAtOnce)));
}

// ---- refused input ----

TEST_F(TheBusAdapter, RefusesBadInputWithNamedErrorsAndKeepsServing) {
  RawClient client(bus_.address());
  struct Case {
    const char* what;
    std::function<RawReply()> call;
    std::string error;
    std::string message;
  };
  const Case cases[] = {
      {"15-byte RAND", [&] { return client.umts(profile_path(1), sequence(1, 15), kAutn); },
       "org.mcimd.Tre1.Error.InvalidArgument", "RAND must be 16 bytes, got 15"},
      {"17-byte AUTN", [&] { return client.umts(profile_path(1), rand_for(kSucceed), sequence(1, 17)); },
       "org.mcimd.Tre1.Error.InvalidArgument", "AUTN must be 16 bytes, got 17"},
      {"unknown profile", [&] { return client.umts(profile_path(99), rand_for(kSucceed), kAutn); },
       "org.mcimd.Tre1.Error.NotFound", "No profile at /org/mcimd/Tre1/Profile/99"},
      {"wrong signature",
       [&] {
         return client.call(profile_path(1), kUsimInterface, "UmtsAuthenticate",
                            [](sd_bus_message* m) { sd_bus_message_append(m, "s", "hello"); });
       },
       "org.freedesktop.DBus.Error.InvalidArgs", "expecting 'ayay'"},
      {"no RAND for GSM", [&] { return client.gsm(profile_path(1), {}); }, "org.mcimd.Tre1.Error.InvalidArgument",
       "At least one RAND"},
      {"four RANDs for GSM", [&] { return client.gsm(profile_path(1), std::vector<Bytes>(4, sequence(0, 16))); },
       "org.mcimd.Tre1.Error.InvalidArgument", "At most 3 RANDs"},
      {"short GSM RAND",
       [&] {
         return client.gsm(profile_path(1), {sequence(0, 16), sequence(0, 8)});
       },
       "org.mcimd.Tre1.Error.InvalidArgument", "RAND 1 must be 16 bytes, got 8"},
      {"Manager call on an unknown profile",
       [&] {
         return client.call(kRootPath, kManagerInterface, "EnableProfile",
                            [](sd_bus_message* m) { sd_bus_message_append(m, "o", "/org/mcimd/Tre1/Profile/42"); });
       },
       "org.mcimd.Tre1.Error.NotFound", "No profile at /org/mcimd/Tre1/Profile/42"},
      {"Manager call on a non-profile path",
       [&] {
         return client.call(kRootPath, kManagerInterface, "DeleteProfile",
                            [](sd_bus_message* m) { sd_bus_message_append(m, "o", "/org/mcimd/Tre1"); });
       },
       "org.mcimd.Tre1.Error.InvalidArgument", "is not a profile object path"},
      {"property of an unknown profile",
       [&] {
         return client.call(profile_path(7), "org.freedesktop.DBus.Properties", "Get",
                            [](sd_bus_message* m) { sd_bus_message_append(m, "ss", kProfileInterface, "Iccid"); });
       },
       "org.mcimd.Tre1.Error.NotFound", "No profile at /org/mcimd/Tre1/Profile/7"},
  };
  for (const auto& c : cases) {
    auto reply = c.call();
    EXPECT_EQ(reply.error_name, c.error) << c.what << ": " << reply.error_message;
    EXPECT_NE(reply.error_message.find(c.message), std::string::npos) << c.what << ": " << reply.error_message;
    expect_still_serving();
  }

  // busctl shows the human message and fails.
  auto r = busctl_call(profile_path(1), kUsimInterface, "UmtsAuthenticate", umts_args(sequence(1, 15), kAutn));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("RAND must be 16 bytes, got 15"), std::string::npos) << r.err;
  expect_still_serving();
}

TEST_F(TheBusAdapter, MapsServiceErrorsToTheirNamesAndMcimctlExitCodes) {
  struct Case {
    uint8_t outcome;
    int exit_code;
    std::string prefix;
  };
  const Case cases[] = {
      {kMacFailure, 3, "mcimctl: MacFailure: AUTN MAC does not verify"},
      {kPlatformChanged, 4, "mcimctl: PlatformStateChanged: PCR 7 no longer matches the policy"},
  };
  for (const auto& c : cases) {
    auto r = run_mcimctl({"authenticate", "1", "--rand", hex(rand_for(c.outcome)), "--autn", hex(kAutn)});
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_EQ(r.err.rfind(c.prefix, 0), 0u) << r.err;
    EXPECT_EQ(r.out, "");
  }
  RawClient client(bus_.address());
  EXPECT_EQ(client.umts(profile_path(1), rand_for(kMacFailure), kAutn).error_name, "org.mcimd.Tre1.Error.MacFailure");

  auto missing = run_mcimctl({"delete", "99"});
  EXPECT_EQ(missing.exit_code, 6) << missing.err;
  EXPECT_EQ(missing.err, "mcimctl: NotFound: No profile at /org/mcimd/Tre1/Profile/99\n");

  auto bootstrap = run_mcimctl({"disable", "2"});
  EXPECT_EQ(bootstrap.exit_code, 1);
  EXPECT_EQ(bootstrap.err, "mcimctl: InvalidState: the bootstrap profile stays enabled\n");
}

TEST_F(TheBusAdapter, AnswersInternalWhenTheServiceDropsOrThrows) {
  RawClient client(bus_.address());
  auto dropped = client.umts(profile_path(1), rand_for(kDropReply), kAutn);
  EXPECT_EQ(dropped.error_name, "org.mcimd.Tre1.Error.Internal") << dropped.error_message;
  auto thrown = client.umts(profile_path(1), rand_for(kThrow), kAutn);
  EXPECT_EQ(thrown.error_name, "org.mcimd.Tre1.Error.Internal") << thrown.error_message;
  expect_still_serving();
}

// ---- authorisation ----

TEST_F(TheBusAdapter, RefusesAnUnauthorisedUid) {
  Bytes rand = rand_for(kSucceed);
  auto ctl = test::run(as_user(kNobody, mcimctl({"authenticate", "1", "--rand", hex(rand), "--autn", hex(kAutn)})));
  EXPECT_EQ(ctl.exit_code, 5) << ctl.err;
  EXPECT_EQ(ctl.err.rfind("mcimctl: NotAuthorized: uid 65534 may not authenticate", 0), 0u) << ctl.err;

  // dbus-send prints the full error name.
  auto send = test::run(as_user(kNobody, {"dbus-send", "--bus=" + bus_.address(), "--print-reply",
                                          "--dest=org.mcimd.Tre1", kRootPath, "org.mcimd.Tre1.Manager.ListProfiles"}));
  EXPECT_NE(send.exit_code, 0);
  EXPECT_NE(send.err.find("org.mcimd.Tre1.Error.NotAuthorized"), std::string::npos) << send.err;

  // Reads are refused as well: properties, introspection, the object manager.
  for (std::vector<std::string> args : {
           std::vector<std::string>{"get-property", kBusName, profile_path(1), kProfileInterface, "Imsi"},
           std::vector<std::string>{"call", kBusName, kRootPath, "org.freedesktop.DBus.Introspectable", "Introspect"},
           std::vector<std::string>{"call", kBusName, kRootPath, "org.freedesktop.DBus.ObjectManager",
                                    "GetManagedObjects"},
       }) {
    auto r = test::run(as_user(kNobody, busctl(args)));
    EXPECT_NE(r.exit_code, 0) << args[0];
    EXPECT_NE(r.err.find("uid 65534 may not read"), std::string::npos) << r.err;
  }
  expect_still_serving();
}

TEST_F(TheBusAdapter, LetsTheModemRoleAuthenticateAndReadButNotManage) {
  Bytes rand = rand_for(kSucceed);
  auto auth = test::run(as_user(kModemUid, mcimctl({"authenticate", "1", "--rand", hex(rand), "--autn", hex(kAutn)})));
  EXPECT_EQ(auth.exit_code, 0) << auth.err;
  auto list = test::run(as_user(kModemUid, mcimctl({"--json", "list"})));
  EXPECT_EQ(list.exit_code, 0) << list.err;
  auto enable = test::run(as_user(kModemUid, mcimctl({"enable", "2"})));
  EXPECT_EQ(enable.exit_code, 5) << enable.err;
  EXPECT_EQ(
      enable.err.rfind("mcimctl: NotAuthorized: uid " + std::to_string(kModemUid) + " may not manage profiles", 0), 0u)
      << enable.err;
  // The modem stack may ask for the bootstrap profile when the operational one cannot attach,
  // and may not hand mcimd an operator's command.
  auto fallback = test::run(as_user(kModemUid, mcimctl({"fallback"})));
  EXPECT_EQ(fallback.exit_code, 0) << fallback.err;
  auto command = test::run(as_user(kModemUid, mcimctl({"command", "/etc/passwd"})));
  EXPECT_NE(command.exit_code, 0);
  EXPECT_NE(command.err.find("NotAuthorized"), std::string::npos) << command.err;
}

TEST_F(TheBusAdapter, LetsGroupMembersInThroughTheirSupplementaryGroup) {
  // The same stranger uid, now carrying a modem group: the adapter reads the groups from /proc.
  DbusDaemon other;
  AccessPolicy policy;
  policy.modem_gids = {4242};
  AdapterThread grouped(other.address(), policy);
  std::vector<std::string> argv = {"setpriv",       "--reuid=65534", "--regid=65534", "--groups=4242", kMcimctl,
                                   "--bus-address", other.address(), "--json",        "list"};
  auto r = test::run(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto denied = test::run(as_user(kNobody, {kMcimctl, "--bus-address", other.address(), "list"}));
  EXPECT_EQ(denied.exit_code, 5) << denied.err;
}

// ---- management ----

TEST_F(TheBusAdapter, InstallsAProfileFromAPassedDescriptorAndAnnouncesIt) {
  test::TempDir dir;
  auto file = dir.path() / "profile.yaml";
  const std::string document = "iccid: \"8988211000000000033\"\nk: 465b5ce8b199b49faa5f0a2ee238a6bc\n";
  std::ofstream(file) << document;

  SignalRecorder signals(bus_.address());
  auto r = run_mcimctl({"install", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/org/mcimd/Tre1/Profile/3\n");
  ASSERT_EQ(adapter_.service().documents().size(), 1u);
  EXPECT_EQ(adapter_.service().documents()[0], document);

  auto added = signals.wait_for([](auto& s) { return s.member == "InterfacesAdded"; });
  ASSERT_TRUE(added);
  EXPECT_EQ(added->path, kRootPath);
  EXPECT_EQ(added->object, "/org/mcimd/Tre1/Profile/3");
  EXPECT_TRUE(added->names.count(kProfileInterface));
  EXPECT_TRUE(added->names.count(kUsimInterface));
  EXPECT_EQ(added->string_properties["Iccid"], "8988211000000000033");

  auto objects = busctl_call(kRootPath, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects");
  EXPECT_TRUE(json::parse(objects.out)["data"][0].contains("/org/mcimd/Tre1/Profile/3")) << objects.out;

  // From standard input: mcimctl copies the pipe into a memfd.
  auto piped =
      test::run({"sh", "-c", "printf 'iccid: 8988211000000000044\\n' | \"$0\" --json --bus-address \"$1\" install -",
                 kMcimctl, bus_.address()});
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(json::parse(piped.out), (json{{"profile", "/org/mcimd/Tre1/Profile/4"}}));
}

TEST_F(TheBusAdapter, RefusesProfileDocumentsItCannotReadSafely) {
  RawClient client(bus_.address());
  auto install = [&](int fd) {
    return client.call(kRootPath, kManagerInterface, "InstallProfile",
                       [fd](sd_bus_message* m) { sd_bus_message_append(m, "h", fd); });
  };
  test::TempDir dir;

  auto big = dir.path() / "big.yaml";
  std::ofstream(big) << std::string(kMaxProfileDocumentSize + 1, 'x');
  int fd = open(big.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto too_big = install(fd);
  close(fd);
  EXPECT_EQ(too_big.error_name, "org.mcimd.Tre1.Error.InvalidArgument");
  EXPECT_NE(too_big.error_message.find("at most 65536"), std::string::npos) << too_big.error_message;

  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  auto from_pipe = install(pipe_fds[0]);  // nothing is ever written: reading it would hang
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  EXPECT_EQ(from_pipe.error_name, "org.mcimd.Tre1.Error.InvalidArgument");
  EXPECT_NE(from_pipe.error_message.find("regular file"), std::string::npos) << from_pipe.error_message;

  auto empty = dir.path() / "empty.yaml";
  std::ofstream(empty).flush();
  fd = open(empty.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto nothing = install(fd);
  close(fd);
  EXPECT_EQ(nothing.error_name, "org.mcimd.Tre1.Error.InvalidArgument");
  EXPECT_NE(nothing.error_message.find("is empty"), std::string::npos) << nothing.error_message;

  auto too_big_ctl = run_mcimctl({"install", big.string()});
  EXPECT_EQ(too_big_ctl.exit_code, 1);
  EXPECT_EQ(too_big_ctl.err.rfind("mcimctl: InvalidArgument: The profile document is 65537 bytes", 0), 0u)
      << too_big_ctl.err;
  expect_still_serving();
}

TEST_F(TheBusAdapter, EnablesDisablesAndDeletesWithSignals) {
  SignalRecorder signals(bus_.address());

  auto enable = run_mcimctl({"enable", "/org/mcimd/Tre1/Profile/2"});
  ASSERT_EQ(enable.exit_code, 0) << enable.err;
  EXPECT_EQ(enable.out, "Profile /org/mcimd/Tre1/Profile/2 enabled.\n");
  auto state = signals.wait_for([](auto& s) {
    return s.member == "PropertiesChanged" && s.path == "/org/mcimd/Tre1/Profile/2" && s.names.count("State");
  });
  EXPECT_TRUE(state);
  auto manager = signals.wait_for(
      [](auto& s) { return s.member == "PropertiesChanged" && s.path == kRootPath && s.names.count("ActiveProfile"); });
  EXPECT_TRUE(manager);
  auto active = run_busctl({"get-property", kBusName, kRootPath, kManagerInterface, "ActiveProfile"});
  EXPECT_EQ(active.out, "o \"/org/mcimd/Tre1/Profile/2\"\n");

  auto disable = run_mcimctl({"--json", "disable", "1"});
  ASSERT_EQ(disable.exit_code, 0) << disable.err;
  EXPECT_EQ(json::parse(disable.out), (json{{"profile", "/org/mcimd/Tre1/Profile/1"}, {"result", "disabled"}}));

  auto del = run_mcimctl({"delete", "1"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  auto removed = signals.wait_for([](auto& s) { return s.member == "InterfacesRemoved"; });
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->object, "/org/mcimd/Tre1/Profile/1");
  EXPECT_TRUE(removed->names.count(kProfileInterface));
  EXPECT_TRUE(removed->names.count(kUsimInterface));

  auto list = busctl_call(kRootPath, kManagerInterface, "ListProfiles");
  EXPECT_EQ(json::parse(list.out)["data"][0], json::array({"/org/mcimd/Tre1/Profile/2"}));
}

TEST_F(TheBusAdapter, KeepsAndListsSignedPcrPoliciesForTheAdminOnly) {
  test::TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all | std::filesystem::perms::group_exec |
                                               std::filesystem::perms::others_exec);  // the modem user reads it too
  auto policy = dir.path() / "policy.json";
  std::ofstream(policy) << "good policy";
  auto added = run_mcimctl({"policy", "add", policy.string()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, "Kept PCR policy good.\n");
  auto bad = dir.path() / "bad.json";
  std::ofstream(bad) << "bad policy";
  auto refused = run_mcimctl({"policy", "add", bad.string()});
  EXPECT_EQ(refused.exit_code, 5) << refused.err;
  EXPECT_EQ(refused.err, "mcimctl: NotAuthorized: not signed by the configured authority\n");
  auto listed = run_mcimctl({"--json", "policy", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(json::parse(listed.out),
            (json{{"policies", json::array({json{{"id", "good"}, {"pcrs", "sha256:7"}, {"active", true}}})}}));
  // The modem role may read the list, not add to it.
  auto modem_list = test::run(as_user(kModemUid, mcimctl({"policy", "list"})));
  EXPECT_EQ(modem_list.exit_code, 0) << modem_list.err;
  EXPECT_EQ(modem_list.out, "good  sha256:7  (approves the platform)\n");
  auto modem_add = test::run(as_user(kModemUid, mcimctl({"policy", "add", policy.string()})));
  EXPECT_EQ(modem_add.exit_code, 5) << modem_add.err;
  // An empty document never reaches the service.
  auto empty = run_busctl({"call", kBusName, kRootPath, kManagerInterface, "AddPcrPolicy", "s", ""});
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_NE(empty.err.find("policy must be 1 to 65536 bytes"), std::string::npos) << empty.err;
}

TEST_F(TheBusAdapter, AnnouncesProfilesTheServiceAddsAndPlatformStateChanges) {
  SignalRecorder signals(bus_.address());
  adapter_.on_loop([](FakeService& s) { s.add(make_profile(9, "8988211000000000099", ProfileState::Disabled, ProfileClass::Operational)); });
  auto added = signals.wait_for(
      [](auto& s) { return s.member == "InterfacesAdded" && s.object == "/org/mcimd/Tre1/Profile/9"; });
  ASSERT_TRUE(added);
  EXPECT_EQ(added->string_properties["Imsi"], "001010000000009");

  adapter_.on_loop([](FakeService& s) { s.set_platform_state(PlatformState::Changed); });
  auto changed = signals.wait_for(
      [](auto& s) { return s.member == "PropertiesChanged" && s.path == kRootPath && s.names.count("PlatformState"); });
  EXPECT_TRUE(changed);
  auto platform = run_busctl({"get-property", kBusName, kRootPath, kManagerInterface, "PlatformState"});
  EXPECT_EQ(platform.out, "s \"changed\"\n");
}

// ---- introspection versus the XML kept in the repository ----

struct Member {
  std::vector<std::string> args;  // "direction type name"
};
struct InterfaceDescription {
  std::map<std::string, Member> methods, signals;
  std::map<std::string, std::string> properties;  // name → "type access"
};

std::map<std::string, std::string> attributes(const std::string& text) {
  std::map<std::string, std::string> out;
  static const std::regex attr(R"re(([A-Za-z_:.-]+)\s*=\s*"([^"]*)")re");
  for (std::sregex_iterator it(text.begin(), text.end(), attr), end; it != end; ++it) out[(*it)[1]] = (*it)[2];
  return out;
}

// A small reader for D-Bus introspection XML: interfaces, methods, signals, properties.
std::map<std::string, InterfaceDescription> parse_introspection(std::string xml) {
  xml = std::regex_replace(xml, std::regex(R"(<!--[\s\S]*?-->)"), "");
  xml = std::regex_replace(xml, std::regex(R"(<![A-Z][^>]*>)"), "");
  std::map<std::string, InterfaceDescription> out;
  static const std::regex tag(R"(<(/?)([A-Za-z]+)([^>]*?)(/?)>)");
  InterfaceDescription* interface = nullptr;
  Member* member = nullptr;
  bool in_signal = false;
  for (std::sregex_iterator it(xml.begin(), xml.end(), tag), end; it != end; ++it) {
    bool closing = (*it)[1] == "/", self_closing = (*it)[4] == "/";
    std::string name = (*it)[2];
    auto attrs = attributes((*it)[3]);
    if (closing) {
      if (name == "interface") interface = nullptr;
      if (name == "method" || name == "signal") member = nullptr;
      continue;
    }
    if (name == "interface") {
      interface = &out[attrs["name"]];
      if (self_closing) interface = nullptr;
    } else if ((name == "method" || name == "signal") && interface) {
      in_signal = name == "signal";
      member = &(in_signal ? interface->signals : interface->methods)[attrs["name"]];
      if (self_closing) member = nullptr;
    } else if (name == "arg" && member) {
      std::string direction = attrs.count("direction") ? attrs["direction"] : (in_signal ? "out" : "in");
      member->args.push_back(direction + " " + attrs["type"] + " " + attrs["name"]);
    } else if (name == "property" && interface) {
      interface->properties[attrs["name"]] = attrs["type"] + " " + attrs["access"];
    }
  }
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(TheBusAdapter, IntrospectsExactlyAsTheXmlInTheRepositorySays) {
  auto documented = parse_introspection(read_text(kXmlFile));
  ASSERT_EQ(documented.size(), 4u)
      << "the XML file should describe Manager, Attestation, Profile and USimApplication";
  RawClient client(bus_.address());
  auto live = parse_introspection(client.introspect(kRootPath));
  for (auto& [name, description] : parse_introspection(client.introspect(profile_path(1)))) live[name] = description;

  EXPECT_TRUE(live.count("org.freedesktop.DBus.ObjectManager")) << "root object lacks the ObjectManager";
  for (const auto& [name, want] : documented) {
    ASSERT_TRUE(live.count(name)) << name << " is not on the bus";
    const auto& have = live[name];
    for (const auto& [method, m] : want.methods) {
      ASSERT_TRUE(have.methods.count(method)) << name << "." << method << " is not on the bus";
      EXPECT_EQ(have.methods.at(method).args, m.args) << name << "." << method;
      EXPECT_TRUE(listed_access(name, method)) << name << "." << method << " has no access entry";
    }
    for (const auto& [property, p] : want.properties) {
      ASSERT_TRUE(have.properties.count(property)) << name << "." << property << " is not on the bus";
      EXPECT_EQ(have.properties.at(property), p) << name << "." << property;
    }
    for (const auto& [signal, s] : want.signals) {
      ASSERT_TRUE(have.signals.count(signal)) << name << "." << signal << " is not on the bus";
      EXPECT_EQ(have.signals.at(signal).args, s.args) << name << "." << signal;
    }
    // And nothing on the bus that the XML does not document.
    for (const auto& [method, m] : have.methods) EXPECT_TRUE(want.methods.count(method)) << name << "." << method;
    for (const auto& [property, p] : have.properties)
      EXPECT_TRUE(want.properties.count(property)) << name << "." << property;
    for (const auto& [signal, s] : have.signals) EXPECT_TRUE(want.signals.count(signal)) << name << "." << signal;
  }
  for (const auto& [name, description] : live) {
    if (name.rfind("org.mcimd.", 0) == 0) {
      EXPECT_TRUE(documented.count(name)) << name << " is not in the XML file";
    }
  }
}

// ---- attestation ----

Bytes read_binary(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A syntactically valid JWS compact serialisation; only the FakeService sees it.
const std::string kSignedPolicy = "eyJhbGciOiJFUzI1NiJ9.eyJwY3JzIjp7fX0.c2lnbmF0dXJl";

class TheAttestationInterface : public TheBusAdapter {
 protected:
  RawReply get_endorsement(RawClient& client, const std::string& ek_type) {
    return client.call(kRootPath, kAttestationInterface, "GetEndorsement",
                       [&](sd_bus_message* m) { sd_bus_message_append(m, "s", ek_type.c_str()); });
  }
  RawReply activate(RawClient& client, const std::string& ek_type, const Bytes& blob, const Bytes& secret) {
    return client.call(kRootPath, kAttestationInterface, "ActivateCredential", [&](sd_bus_message* m) {
      sd_bus_message_append(m, "s", ek_type.c_str());
      sd_bus_message_append_array(m, 'y', blob.data(), blob.size());
      sd_bus_message_append_array(m, 'y', secret.data(), secret.size());
    });
  }
  RawReply evidence(RawClient& client, const Bytes& nonce) {
    return client.call(kRootPath, kAttestationInterface, "GetEvidence",
                       [&](sd_bus_message* m) { sd_bus_message_append_array(m, 'y', nonce.data(), nonce.size()); });
  }
  RawReply validate(RawClient& client, const std::string& policy, const Bytes& nonce) {
    return client.call(kRootPath, kAttestationInterface, "ValidatePlatform", [&](sd_bus_message* m) {
      sd_bus_message_append(m, "s", policy.c_str());
      sd_bus_message_append_array(m, 'y', nonce.data(), nonce.size());
    });
  }
  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_.path() / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  test::TempDir dir_;
};

TEST_F(TheAttestationInterface, AnswersGetEndorsementWithTheEkItsCertificateAndTheAk) {
  auto ecc = busctl_call(kRootPath, kAttestationInterface, "GetEndorsement", {"s", "ecc"});
  ASSERT_EQ(ecc.exit_code, 0) << ecc.err;
  auto doc = json::parse(ecc.out);
  EXPECT_EQ(doc["type"], "ayayay");
  EXPECT_EQ(json_bytes(doc["data"][0]), kEkPublic);
  EXPECT_EQ(json_bytes(doc["data"][1]), kEkCertificate);
  EXPECT_EQ(json_bytes(doc["data"][2]), kAkPublic);

  // Without a certificate in the TPM, the certificate is an empty array.
  auto rsa = busctl_call(kRootPath, kAttestationInterface, "GetEndorsement", {"s", "rsa"});
  ASSERT_EQ(rsa.exit_code, 0) << rsa.err;
  EXPECT_EQ(json::parse(rsa.out)["data"][1], json::array());
  EXPECT_EQ(adapter_.service().attestation_calls(),
            (std::vector<std::string>{"GetEndorsement ecc", "GetEndorsement rsa"}));
}

TEST_F(TheAttestationInterface, GivesMcimctlTheEnrolmentRequestTheOperatorReads) {
  auto printed = run_mcimctl({"attest", "endorsement", "--json"});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  auto request = protocol::enrolment_request_from_json(printed.out);
  ASSERT_TRUE(request) << request.error().describe() << "\n" << printed.out;
  EXPECT_EQ(*request, (protocol::EnrolmentRequest{kEkPublic, kEkCertificate, kAkPublic}));

  auto file = dir_.path() / "request.json";
  auto written = run_mcimctl({"attest", "endorsement", "--ek", "rsa", "--out", file.string()});
  ASSERT_EQ(written.exit_code, 0) << written.err;
  EXPECT_NE(written.out.find("EK certificate:  none in the TPM"), std::string::npos) << written.out;
  EXPECT_NE(written.out.find("Enrolment request written to " + file.string()), std::string::npos) << written.out;
  auto from_file = protocol::enrolment_request_from_json(read_text(file.string()));
  ASSERT_TRUE(from_file) << from_file.error().describe();
  EXPECT_EQ(*from_file, (protocol::EnrolmentRequest{kEkPublic, std::nullopt, kAkPublic}));

  // Text mode: a summary with the TPM names, not the document.
  auto summary = run_mcimctl({"attest", "endorsement"});
  ASSERT_EQ(summary.exit_code, 0) << summary.err;
  EXPECT_NE(summary.out.find("EK (ecc):"), std::string::npos) << summary.out;
  EXPECT_NE(summary.out.find("EK certificate:  5 bytes (DER)"), std::string::npos) << summary.out;
  EXPECT_NE(summary.out.find("AK:              TPM2B_PUBLIC, 90 bytes, name "
                             "000b45a796840e7001be43feb986e65b1cb70ce320b9f3383da9cf7c7e6e34a12da6"),
            std::string::npos)
      << summary.out;
  EXPECT_EQ(summary.out.find("\"format\""), std::string::npos) << summary.out;
}

TEST_F(TheAttestationInterface, ActivatesACredentialChallenge) {
  // TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET shapes as tpm2_makecredential writes them.
  const Bytes blob = {0x00, 0x04, 0xde, 0xad, 0xbe, 0xef};
  const Bytes encrypted = {0x00, 0x02, 0x01, 0x02};
  std::vector<std::string> args = {"sayay", "ecc"};
  args = concat(concat(args, ay(blob)), ay(encrypted));
  auto r = busctl_call(kRootPath, kAttestationInterface, "ActivateCredential", args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = json::parse(r.out);
  EXPECT_EQ(doc["type"], "ay");
  EXPECT_EQ(json_bytes(doc["data"][0]), expected_secret(blob));

  auto challenge = write("challenge.json", protocol::to_json(protocol::CredentialChallenge{blob, encrypted}));
  auto text = run_mcimctl({"attest", "activate", "--challenge", challenge});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out, hex(expected_secret(blob)) + "\n");
  auto as_json = run_mcimctl({"--json", "attest", "activate", "--challenge", challenge, "--ek", "rsa"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_EQ(json::parse(as_json.out), (json{{"secret", hex(expected_secret(blob))}}));
  EXPECT_EQ(adapter_.service().attestation_calls(),
            (std::vector<std::string>{"ActivateCredential ecc", "ActivateCredential ecc", "ActivateCredential rsa"}));

  // The TPM refusing the credential is the service's error, with mcimctl's general status.
  auto refused_challenge =
      write("refused.json", protocol::to_json(protocol::CredentialChallenge{blob, Bytes{0x00, 0x01, kTpmFails}}));
  auto refused = run_mcimctl({"attest", "activate", "--challenge", refused_challenge});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err, "mcimctl: TpmFailure: TPM2_ActivateCredential: the credential's integrity check failed\n");
  EXPECT_EQ(refused.out, "");
}

TEST_F(TheAttestationInterface, AnswersGetEvidenceWithTheProtocolDocument) {
  auto r = busctl_call(kRootPath, kAttestationInterface, "GetEvidence", concat({"ay"}, ay(kQuoteNonce)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = json::parse(r.out);
  EXPECT_EQ(doc["type"], "s");
  auto evidence = protocol::evidence_from_json(doc["data"][0].get<std::string>());
  ASSERT_TRUE(evidence) << evidence.error().describe();
  EXPECT_EQ(evidence->nonce, kQuoteNonce);
  EXPECT_EQ(evidence->quote_message, kQuoteMessage);

  auto printed = run_mcimctl({"attest", "evidence", "--nonce", hex(kQuoteNonce)});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_EQ(printed.out, doc["data"][0].get<std::string>() + "\n");
}

TEST_F(TheAttestationInterface, WritesEvidenceAndTheFilesTpm2CheckquoteReads) {
  auto file = dir_.path() / "evidence.json";
  auto trio = dir_.path() / "tpm2";  // created by mcimctl
  auto r = run_mcimctl(
      {"attest", "evidence", "--nonce", hex(kQuoteNonce), "--out", file.string(), "--tpm2-tools", trio.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Evidence written to " + file.string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tpm2_checkquote -u " + (trio / "ak.pub").string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-g sha256 -q 0102"), std::string::npos) << r.out;
  auto evidence = protocol::evidence_from_json(read_text(file.string()));
  ASSERT_TRUE(evidence) << evidence.error().describe();
  EXPECT_EQ(read_binary(trio / "quote.msg"), kQuoteMessage);
  EXPECT_EQ(read_binary(trio / "quote.sig"), kQuoteSignature);
  EXPECT_EQ(read_binary(trio / "ak.pub"), kAkPublic);
  // tpm2-tools' serialized PCR file: a TPML_PCR_SELECTION (132 bytes), a count, then one
  // TPML_DIGEST (532 bytes) for the four quoted values.
  EXPECT_EQ(read_binary(trio / "quote.pcrs").size(), 132u + 4u + 532u);

  auto checked = test::run({"tpm2_checkquote", "-u", (trio / "ak.pub").string(), "-m", (trio / "quote.msg").string(),
                            "-s", (trio / "quote.sig").string(), "-f", (trio / "quote.pcrs").string(), "-g", "sha256",
                            "-q", hex(kQuoteNonce)});
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;

  auto as_json = run_mcimctl({"--json", "attest", "evidence", "--nonce", "0102", "--out", file.string()});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_EQ(json::parse(as_json.out), (json{{"evidence", file.string()}}));
}

TEST_F(TheAttestationInterface, ValidatesThePlatformAgainstASignedPolicy) {
  Bytes nonce = sequence(kTrusted, 32);
  auto r = busctl_call(kRootPath, kAttestationInterface, "ValidatePlatform",
                       concat({"say", kSignedPolicy}, ay(nonce)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = json::parse(r.out);
  EXPECT_EQ(doc["type"], "sayay");
  EXPECT_EQ(doc["data"][0], protocol::to_json(report_for(nonce)));
  EXPECT_EQ(json_bytes(doc["data"][1]), kQuoteMessage);
  EXPECT_EQ(json_bytes(doc["data"][2]), kQuoteSignature);

  // The policy file's final newline is not part of the JWS.
  auto policy = write("policy.jws", kSignedPolicy + "\n");
  auto out = dir_.path() / "report";
  auto text = run_mcimctl({"attest", "validate", "--policy", policy, "--nonce", hex(nonce), "--out", out.string()});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out, "Verdict: trusted\nreport.json, quote.msg and quote.sig written to " + out.string() + ".\n");
  // report.json holds the exact bytes the quote's qualifying data was computed over.
  EXPECT_EQ(read_text((out / "report.json").string()), protocol::to_json(report_for(nonce)));
  EXPECT_EQ(read_binary(out / "quote.msg"), kQuoteMessage);
  EXPECT_EQ(read_binary(out / "quote.sig"), kQuoteSignature);
  EXPECT_EQ(adapter_.service().attestation_calls().back(), "ValidatePlatform " + kSignedPolicy + " " + hex(nonce));

  auto as_json = run_mcimctl({"--json", "attest", "validate", "--policy", policy, "--nonce", hex(nonce)});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_EQ(as_json.out, protocol::to_json(report_for(nonce)) + "\n");
}

TEST_F(TheAttestationInterface, ReportsAnUntrustedPlatformAsASuccessfulCall) {
  auto policy = write("policy.jws", kSignedPolicy);
  Bytes nonce = {kNotTrusted, 0x42};
  auto r = run_mcimctl({"attest", "validate", "--policy", policy, "--nonce", hex(nonce)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Verdict: not trusted\n  failed: pcr7: PCR 7 differs from the reference\n"
            "Use --json or --out DIR for the signed report and its quote.\n");
  auto as_json = run_mcimctl({"--json", "attest", "validate", "--policy", policy, "--nonce", hex(nonce)});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_EQ(json::parse(as_json.out)["trusted"], false);

  auto failed = run_mcimctl({"attest", "validate", "--policy", policy, "--nonce", hex(Bytes{kTpmFails})});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_EQ(failed.err, "mcimctl: TpmFailure: TPM2_Quote failed\n");
}

TEST_F(TheAttestationInterface, RefusesBadInputWithInvalidArgumentAndKeepsServing) {
  RawClient client(bus_.address());
  const Bytes blob = {0x00, 0x01, 0x00};
  struct Case {
    const char* what;
    std::function<RawReply()> call;
    std::string error;
    std::string message;
  };
  const Case cases[] = {
      {"dsa EK", [&] { return get_endorsement(client, "dsa"); }, "org.mcimd.Tre1.Error.InvalidArgument",
       "ek_type must be \"ecc\" or \"rsa\", got \"dsa\""},
      {"empty EK type", [&] { return get_endorsement(client, ""); }, "org.mcimd.Tre1.Error.InvalidArgument",
       "ek_type must be"},
      {"upper-case EK type", [&] { return activate(client, "ECC", blob, blob); },
       "org.mcimd.Tre1.Error.InvalidArgument", "ek_type must be"},
      {"empty credential blob", [&] { return activate(client, "ecc", {}, blob); },
       "org.mcimd.Tre1.Error.InvalidArgument", "credential_blob must be 1 to 4096 bytes, got 0"},
      {"empty encrypted secret", [&] { return activate(client, "ecc", blob, {}); },
       "org.mcimd.Tre1.Error.InvalidArgument", "encrypted_secret must be 1 to 4096 bytes, got 0"},
      {"oversized credential blob", [&] { return activate(client, "rsa", Bytes(4097, 1), blob); },
       "org.mcimd.Tre1.Error.InvalidArgument", "credential_blob must be 1 to 4096 bytes, got 4097"},
      {"empty nonce", [&] { return evidence(client, {}); }, "org.mcimd.Tre1.Error.InvalidArgument",
       "nonce must be 1 to 64 bytes, got 0"},
      {"65-byte nonce", [&] { return evidence(client, Bytes(65, 1)); }, "org.mcimd.Tre1.Error.InvalidArgument",
       "nonce must be 1 to 64 bytes, got 65"},
      {"empty nonce to validate", [&] { return validate(client, kSignedPolicy, {}); },
       "org.mcimd.Tre1.Error.InvalidArgument", "nonce must be 1 to 64 bytes, got 0"},
      {"65-byte nonce to validate", [&] { return validate(client, kSignedPolicy, Bytes(65, 1)); },
       "org.mcimd.Tre1.Error.InvalidArgument", "nonce must be 1 to 64 bytes, got 65"},
      {"empty policy", [&] { return validate(client, "", Bytes{1}); }, "org.mcimd.Tre1.Error.InvalidArgument",
       "signed_policy must be 1 to 262144 bytes, got 0"},
      {"oversized policy", [&] { return validate(client, std::string(kMaxSignedPolicySize + 1, 'a'), Bytes{1}); },
       "org.mcimd.Tre1.Error.InvalidArgument", "got 262145"},
      {"wrong signature",
       [&] {
         return client.call(kRootPath, kAttestationInterface, "GetEvidence",
                            [](sd_bus_message* m) { sd_bus_message_append(m, "s", "0102"); });
       },
       "org.freedesktop.DBus.Error.InvalidArgs", "expecting 'ay'"},
  };
  for (const auto& c : cases) {
    auto reply = c.call();
    EXPECT_EQ(reply.error_name, c.error) << c.what << ": " << reply.error_message;
    EXPECT_NE(reply.error_message.find(c.message), std::string::npos) << c.what << ": " << reply.error_message;
    expect_still_serving();
  }
  EXPECT_TRUE(adapter_.service().attestation_calls().empty()) << "refused input reached the service";

  // The bounds themselves are accepted.
  EXPECT_EQ(evidence(client, Bytes(64, kTrusted)).error_name, "");
  EXPECT_EQ(evidence(client, Bytes{kTrusted}).error_name, "");
  EXPECT_EQ(activate(client, "rsa", Bytes(4096, 1), blob).error_name, "");
  EXPECT_EQ(validate(client, std::string(kMaxSignedPolicySize, 'a'), Bytes(64, kTrusted)).error_name, "");

  // busctl shows the message; mcimctl refuses the same input before calling.
  auto r = busctl_call(kRootPath, kAttestationInterface, "GetEndorsement", {"s", "dsa"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("ek_type must be"), std::string::npos) << r.err;
  auto ctl = run_mcimctl({"attest", "evidence", "--nonce", hex(Bytes(65, 1))});
  EXPECT_EQ(ctl.exit_code, 2);
  EXPECT_EQ(ctl.err, "mcimctl: --nonce: expected 1 to 64 bytes, got 65\n");
  expect_still_serving();
}

TEST_F(TheAttestationInterface, RefusesEveryoneButTheAdminRole) {
  const Bytes blob = {0x00, 0x01, 0x00};
  auto policy = write("policy.jws", kSignedPolicy);
  chmod(dir_.path().c_str(), 0755);
  chmod(policy.c_str(), 0644);
  auto challenge = write("challenge.json", protocol::to_json(protocol::CredentialChallenge{blob, blob}));
  chmod(challenge.c_str(), 0644);
  const std::vector<std::vector<std::string>> busctl_calls = {
      {"GetEndorsement", "s", "ecc"},
      concat({"ActivateCredential", "sayay", "ecc"}, concat(ay(blob), ay(blob))),
      concat({"GetEvidence", "ay"}, ay(kQuoteNonce)),
      concat({"ValidatePlatform", "say", kSignedPolicy}, ay(kQuoteNonce)),
  };
  const std::vector<std::vector<std::string>> mcimctl_calls = {
      {"attest", "endorsement"},
      {"attest", "activate", "--challenge", challenge},
      {"attest", "evidence", "--nonce", "0102"},
      {"attest", "validate", "--policy", policy, "--nonce", "0102"},
  };
  for (uid_t uid : {kModemUid, kNobody}) {
    const std::string who = "uid " + std::to_string(uid);
    for (const auto& call : busctl_calls) {
      auto r = test::run(as_user(uid, busctl(concat({"call", kBusName, kRootPath, kAttestationInterface}, call))));
      EXPECT_NE(r.exit_code, 0) << who << " " << call[0];
      EXPECT_NE(r.err.find(who + " may not use platform attestation (org.mcimd.Tre1.Attestation." + call[0] + ")"),
                std::string::npos)
          << r.err;
    }
    for (const auto& args : mcimctl_calls) {
      auto r = test::run(as_user(uid, mcimctl(args)));
      EXPECT_EQ(r.exit_code, 5) << who << " " << args[1] << ": " << r.err;
      EXPECT_EQ(r.err.rfind("mcimctl: NotAuthorized: " + who + " may not use platform attestation", 0), 0u) << r.err;
    }
  }
  EXPECT_TRUE(adapter_.service().attestation_calls().empty()) << "a refused call reached the service";
  // The modem role still authenticates.
  auto auth = test::run(as_user(
      kModemUid, mcimctl({"authenticate", "1", "--rand", hex(rand_for(kSucceed)), "--autn", hex(kAutn)})));
  EXPECT_EQ(auth.exit_code, 0) << auth.err;
}

// ---- provisioning ----

TEST_F(TheBusAdapter, HandsTheAgentsPackageRequestAndInstallToTheService) {
  const Bytes nonce(32, 0x5a);
  auto request = run_mcimctl({"package", "request", "--session", "s-1", "--nonce", hex(nonce)});
  ASSERT_EQ(request.exit_code, 0) << request.err;
  auto doc = nlohmann::json::parse(request.out);
  EXPECT_EQ(doc["session"], "s-1");
  EXPECT_EQ(doc["operator_nonce"], hex(nonce));

  test::TempDir dir;
  const auto package = dir.path() / "package.jws";
  const auto receipt = dir.path() / "receipt.json";
  std::ofstream(package) << "aaaa.bbbb.cccc\n";
  auto installed = run_mcimctl({"package", "install", package.string(), "--receipt", receipt.string()});
  ASSERT_EQ(installed.exit_code, 0) << installed.err;
  EXPECT_EQ(installed.out, "Installed /org/mcimd/Tre1/Profile/1.\nInstall receipt written to " + receipt.string() +
                               ".\n");
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(receipt))["package_bytes"], 14) << "the newline was trimmed";
  EXPECT_EQ(adapter_.service().attestation_calls(),
            (std::vector<std::string>{"RequestPackage s-1 " + hex(nonce), "InstallPackage 14"}));
}

TEST_F(TheBusAdapter, PassesEachRefusalOfAPackageOnByName) {
  for (const char* code : {"SignatureInvalid", "UntrustedSigner", "Expired", "Replayed", "WrongDevice", "TpmMismatch",
                           "Unsupported"}) {
    auto r = busctl_call(kRootPath, kManagerInterface, "InstallPackage", {"s", std::string("refuse:") + code});
    EXPECT_NE(r.exit_code, 0) << code;
    EXPECT_NE(r.err.find("scripted refusal " + std::string(code)), std::string::npos) << r.err;
    test::TempDir dir;
    const auto package = dir.path() / "package.jws";
    std::ofstream(package) << "refuse:" << code;
    auto ctl = run_mcimctl({"package", "install", package.string()});
    EXPECT_NE(ctl.exit_code, 0);
    EXPECT_EQ(ctl.err.rfind("mcimctl: " + std::string(code) + ": scripted refusal", 0), 0u) << ctl.err;
  }
  expect_still_serving();
}

TEST_F(TheBusAdapter, RefusesMalformedProvisioningCallsBeforeTheService) {
  // The operator's nonce is exactly 32 bytes; sessions 1-64 characters; packages 1-256 KiB.
  auto short_nonce = busctl_call(kRootPath, kManagerInterface, "RequestPackage",
                                 concat({"say", "s-1"}, ay(Bytes(31, 1))));
  EXPECT_NE(short_nonce.err.find("operator_nonce"), std::string::npos) << short_nonce.err;
  auto long_session = busctl_call(kRootPath, kManagerInterface, "RequestPackage",
                                  concat({"say", std::string(65, 's')}, ay(Bytes(32, 1))));
  EXPECT_NE(long_session.err.find("session must be 1 to 64"), std::string::npos) << long_session.err;
  auto empty = busctl_call(kRootPath, kManagerInterface, "InstallPackage", {"s", ""});
  EXPECT_NE(empty.err.find("package must be 1 to 262144 bytes"), std::string::npos) << empty.err;
  auto ctl = run_mcimctl({"package", "request", "--session", "s", "--nonce", "0102"});
  EXPECT_EQ(ctl.exit_code, 2) << ctl.err;
  EXPECT_TRUE(adapter_.service().attestation_calls().empty()) << "a refused call reached the service";
  expect_still_serving();
}

TEST_F(TheBusAdapter, LetsTheAgentRoleAttestAndProvisionButNotAuthenticateOrManage) {
  DbusDaemon other;
  AccessPolicy policy = test_policy();
  policy.modem_uids.clear();
  policy.agent_uids = {kModemUid};
  AdapterThread agents(other.address(), policy);
  auto with_bus = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {kMcimctl, "--bus-address", other.address()});
    return test::run(as_user(kModemUid, args));
  };
  EXPECT_EQ(with_bus({"package", "request", "--session", "s", "--nonce", hex(Bytes(32, 1))}).exit_code, 0);
  EXPECT_EQ(with_bus({"attest", "evidence", "--nonce", "0102"}).exit_code, 0);
  EXPECT_EQ(with_bus({"list"}).exit_code, 0);
  auto auth = with_bus({"authenticate", "1", "--rand", hex(rand_for(kSucceed)), "--autn", hex(kAutn)});
  EXPECT_EQ(auth.exit_code, 5) << auth.err;
  EXPECT_NE(auth.err.find("may not authenticate with a profile"), std::string::npos) << auth.err;
  auto enable = with_bus({"enable", "2"});
  EXPECT_EQ(enable.exit_code, 5) << enable.err;
  // The modem role may not provision.
  auto modem = test::run(as_user(kModemUid, mcimctl({"package", "request", "--session", "s", "--nonce",
                                                     hex(Bytes(32, 1))})));
  EXPECT_EQ(modem.exit_code, 5) << modem.err;
  EXPECT_NE(modem.err.find("may not provision profiles"), std::string::npos) << modem.err;
}

TEST_F(TheAttestationInterface, LetsConfiguredAdminsAttest) {
  DbusDaemon other;
  AccessPolicy policy = test_policy();
  policy.admin_uids = {kModemUid};
  policy.admin_gids = {4243};
  AdapterThread admins(other.address(), policy);
  auto by_uid = test::run(as_user(kModemUid, {kMcimctl, "--bus-address", other.address(), "--json", "attest",
                                              "evidence", "--nonce", "0102"}));
  EXPECT_EQ(by_uid.exit_code, 0) << by_uid.err;
  std::vector<std::string> by_group = {"setpriv",       "--reuid=65534",   "--regid=65534", "--groups=4243",
                                       kMcimctl,        "--bus-address",   other.address(), "attest",
                                       "endorsement",   "--ek",            "rsa"};
  auto r = test::run(by_group);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// ---- the shipped bus policy ----

class TheShippedBusPolicy : public ::testing::Test {
 protected:
  DbusDaemon bus_{DbusDaemonOptions{false, "<include>" + kPolicyFile + "</include>"}};
  AdapterThread adapter_{bus_.address()};  // runs as root, which the policy lets own the name
};

TEST_F(TheShippedBusPolicy, LetsRootCallEverything) {
  auto list = test::run({kMcimctl, "--bus-address", bus_.address(), "--json", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  auto del = test::run({kMcimctl, "--bus-address", bus_.address(), "delete", "2"});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  auto auth = test::run({kMcimctl, "--bus-address", bus_.address(), "authenticate", "1", "--rand",
                         hex(rand_for(kSucceed)), "--autn", hex(kAutn)});
  EXPECT_EQ(auth.exit_code, 0) << auth.err;
}

TEST_F(TheShippedBusPolicy, DeniesOtherUsersAtTheBus) {
  // kModemUid is a modem for mcimd itself, yet without the mcimd-modem group the bus stops it
  // first; so does it stop nobody.
  for (uid_t uid : {kNobody, kModemUid}) {
    auto send = test::run(as_user(uid, {"dbus-send", "--bus=" + bus_.address(), "--print-reply",
                                        "--dest=org.mcimd.Tre1", kRootPath, "org.mcimd.Tre1.Manager.ListProfiles"}));
    EXPECT_NE(send.exit_code, 0);
    EXPECT_NE(send.err.find("org.freedesktop.DBus.Error.AccessDenied"), std::string::npos) << send.err;

    auto ctl = test::run(as_user(uid, {kMcimctl, "--bus-address", bus_.address(), "authenticate", "1", "--rand",
                                       hex(rand_for(kSucceed)), "--autn", hex(kAutn)}));
    EXPECT_EQ(ctl.exit_code, 5) << ctl.err;
    EXPECT_EQ(ctl.err.rfind("mcimctl: AccessDenied: ", 0), 0u) << ctl.err;
  }
}

TEST_F(TheShippedBusPolicy, KeepsItsSignalsFromOtherUsers) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  uint32_t next_index = 10;
  for (uid_t uid : {uid_t{0}, kNobody}) {
    test::TempDir dir;
    auto out = dir.path() / "signals.txt";
    chmod(dir.path().c_str(), 0777);
    test::Process listener(
        test::ProcessOptions{as_user(uid, {self}), {{"MCIMD_TEST_LISTEN_ADDRESS", bus_.address()}}, out, std::nullopt});
    ASSERT_TRUE(
        test::wait_until([&] { return read_text(out).find("READY") != std::string::npos; }, std::chrono::seconds(10)))
        << "uid " << uid;
    uint32_t index = next_index++;
    adapter_.on_loop([index](FakeService& s) {
      s.add(make_profile(index, "898821100000000" + std::to_string(index), ProfileState::Disabled, ProfileClass::Operational));
    });
    ASSERT_TRUE(listener.wait(std::chrono::seconds(10)));
    bool received = read_text(out).find("InterfacesAdded") != std::string::npos;
    EXPECT_EQ(received, uid == 0) << "uid " << uid << " saw:\n" << read_text(out);
  }
}

TEST_F(TheShippedBusPolicy, LetsRootAttest) {
  auto r = test::run({kMcimctl, "--bus-address", bus_.address(), "--json", "attest", "endorsement"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(protocol::enrolment_request_from_json(r.out)) << r.out;
}

// An existing group to stand in for mcimd-modem or mcimd-admin: dbus-daemon resolves policy group
// names when it loads its configuration (a number is no group name to it), and the test creates
// no system groups. The caller gets the group from setpriv; dbus-daemon reads it with
// SO_PEERGROUPS.
struct StandInGroup {
  std::string name;
  gid_t gid;
};
StandInGroup stand_in_group(std::initializer_list<const char*> candidates) {
  for (const char* name : candidates)
    if (const group* gr = getgrnam(name)) return {name, gr->gr_gid};
  throw std::runtime_error("no system group to stand in for an mcimd group");
}
const StandInGroup kModemGroup = stand_in_group({"dialout", "voice"});
const StandInGroup kAdminGroup = stand_in_group({"fax", "tape"});
const StandInGroup kAgentGroup = stand_in_group({"floppy", "cdrom"});

// A shipped policy (the main one by default) with its groups replaced by the stand-ins, written
// into `dir`. Each of `groups` must be in it.
std::string policy_with_test_groups(const test::TempDir& dir, const std::string& file = kPolicyFile,
                                    std::initializer_list<const char*> groups = {"mcimd-modem", "mcimd-admin",
                                                                                 "mcimd-agent"}) {
  const std::map<std::string, StandInGroup> stand_ins = {
      {"mcimd-modem", kModemGroup}, {"mcimd-admin", kAdminGroup}, {"mcimd-agent", kAgentGroup}};
  std::string text = read_text(file);
  for (const char* name : groups) {
    std::string from = std::string("group=\"") + name + "\"", to = "group=\"" + stand_ins.at(name).name + "\"";
    auto at = text.find(from);
    if (at == std::string::npos) throw std::runtime_error(file + " has no group " + name);
    text.replace(at, from.size(), to);
  }
  auto path = dir.path() / std::filesystem::path(file).filename();
  std::ofstream(path) << text;
  return path.string();
}

class TheShippedBusPolicyGroups : public ::testing::Test {
 protected:
  test::TempDir dir_;
  DbusDaemon bus_{DbusDaemonOptions{false, "<include>" + policy_with_test_groups(dir_) + "</include>"}};
  AdapterThread adapter_{bus_.address(), [] {
                           AccessPolicy p;
                           p.modem_gids = {kModemGroup.gid};
                           p.admin_gids = {kAdminGroup.gid};
                           p.agent_gids = {kAgentGroup.gid};
                           return p;
                         }()};

  test::RunResult run_in_group(const StandInGroup& group, std::vector<std::string> args) {
    std::vector<std::string> argv = {"setpriv", "--reuid=" + std::to_string(kModemUid),
                                     "--regid=" + std::to_string(kModemUid), "--groups=" + std::to_string(group.gid),
                                     kMcimctl, "--bus-address", bus_.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv);
  }
};

TEST_F(TheShippedBusPolicyGroups, DeniesTheModemGroupAttestationAtTheBus) {
  // The bus lets the modem group list and authenticate...
  auto list = run_in_group(kModemGroup, {"--json", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  auto auth = run_in_group(kModemGroup, {"authenticate", "1", "--rand", hex(rand_for(kSucceed)), "--autn", hex(kAutn)});
  EXPECT_EQ(auth.exit_code, 0) << auth.err;
  // ...but stops every attestation call before mcimd sees it.
  for (std::vector<std::string> args : {std::vector<std::string>{"attest", "endorsement"},
                                        std::vector<std::string>{"attest", "evidence", "--nonce", "0102"}}) {
    auto r = run_in_group(kModemGroup, args);
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_EQ(r.err.rfind("mcimctl: AccessDenied: ", 0), 0u) << r.err;
  }
  auto send = test::run({"setpriv", "--reuid=" + std::to_string(kModemUid), "--regid=" + std::to_string(kModemUid),
                         "--groups=" + std::to_string(kModemGroup.gid), "dbus-send", "--bus=" + bus_.address(),
                         "--print-reply", "--dest=org.mcimd.Tre1", kRootPath,
                         "org.mcimd.Tre1.Attestation.GetEndorsement", "string:ecc"});
  EXPECT_NE(send.exit_code, 0);
  EXPECT_NE(send.err.find("org.freedesktop.DBus.Error.AccessDenied"), std::string::npos) << send.err;
  EXPECT_TRUE(adapter_.service().attestation_calls().empty());
}

TEST_F(TheShippedBusPolicyGroups, LetsTheAdminGroupAttest) {
  auto r = run_in_group(kAdminGroup, {"--json", "attest", "evidence", "--nonce", "0102"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(protocol::evidence_from_json(r.out)) << r.out;
}

TEST_F(TheShippedBusPolicyGroups, LetsTheAgentGroupProvisionAndAttestButNotAuthenticateOrManage) {
  auto request = run_in_group(kAgentGroup, {"package", "request", "--session", "s", "--nonce", hex(Bytes(32, 7))});
  EXPECT_EQ(request.exit_code, 0) << request.err;
  auto evidence = run_in_group(kAgentGroup, {"--json", "attest", "evidence", "--nonce", "0102"});
  EXPECT_EQ(evidence.exit_code, 0) << evidence.err;
  auto list = run_in_group(kAgentGroup, {"--json", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  // The bus stops the rest before mcimd sees it.
  for (std::vector<std::string> args :
       {std::vector<std::string>{"authenticate", "1", "--rand", hex(rand_for(kSucceed)), "--autn", hex(kAutn)},
        std::vector<std::string>{"enable", "2"}, std::vector<std::string>{"delete", "2"}}) {
    auto r = run_in_group(kAgentGroup, args);
    EXPECT_EQ(r.exit_code, 5) << args[0] << ": " << r.err;
    EXPECT_EQ(r.err.rfind("mcimctl: AccessDenied: ", 0), 0u) << r.err;
  }
  // The modem group may not provision.
  auto modem = run_in_group(kModemGroup, {"package", "request", "--session", "s", "--nonce", hex(Bytes(32, 7))});
  EXPECT_EQ(modem.exit_code, 5) << modem.err;
  EXPECT_EQ(modem.err.rfind("mcimctl: AccessDenied: ", 0), 0u) << modem.err;
}

// ---- the oFono compatibility's bus policy, beside the main one ----

class TheShippedOfonoCompatPolicy : public ::testing::Test {
 protected:
  test::TempDir dir_;
  DbusDaemon bus_{DbusDaemonOptions{
      false, "<include>" + policy_with_test_groups(dir_) + "</include><include>" +
                 policy_with_test_groups(dir_, kOfonoPolicyFile, {"mcimd-modem", "mcimd-admin"}) + "</include>"}};
  // Runs as root, which the policy lets own org.ofono.
  AdapterThread adapter_{bus_.address(),
                         [] {
                           AccessPolicy p;
                           p.modem_gids = {kModemGroup.gid};
                           p.admin_gids = {kAdminGroup.gid};
                           p.agent_gids = {kAgentGroup.gid};
                           return p;
                         }(),
                         /*ofono_compat=*/true};

  // dbus-send to org.ofono as kModemUid with `groups` only.
  test::RunResult send_in_group(const std::vector<gid_t>& groups, const std::string& path,
                                const std::string& method, std::vector<std::string> args = {}) {
    std::string list;
    for (gid_t g : groups) list += (list.empty() ? "" : ",") + std::to_string(g);
    std::vector<std::string> argv = {"setpriv", "--reuid=" + std::to_string(kModemUid),
                                     "--regid=" + std::to_string(kModemUid),
                                     groups.empty() ? "--clear-groups" : "--groups=" + list,
                                     "dbus-send", "--bus=" + bus_.address(), "--print-reply", "--dest=org.ofono",
                                     path, method};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv);
  }
};

std::string dbus_send_bytes(const Bytes& b) {
  std::string out = "array:byte:";
  for (std::size_t i = 0; i < b.size(); ++i) out += (i ? "," : "") + std::to_string(b[i]);
  return out;
}

TEST_F(TheShippedOfonoCompatPolicy, LetsTheModemGroupReadAndAuthenticate) {
  auto modems = send_in_group({kModemGroup.gid}, "/", "org.ofono.Manager.GetModems");
  EXPECT_EQ(modems.exit_code, 0) << modems.err;
  EXPECT_NE(modems.out.find("/mcimd_0"), std::string::npos) << modems.out;
  auto apps = send_in_group({kModemGroup.gid}, "/mcimd_0", "org.ofono.SimAuthentication.GetApplications");
  EXPECT_EQ(apps.exit_code, 0) << apps.err;
  EXPECT_NE(apps.out.find("Umts"), std::string::npos) << apps.out;
  const Bytes rand = rand_for(kSucceed);
  auto auth = send_in_group({kModemGroup.gid}, "/mcimd_0/usim", "org.ofono.USimApplication.UmtsAuthenticate",
                            {dbus_send_bytes(rand), dbus_send_bytes(kAutn)});
  EXPECT_EQ(auth.exit_code, 0) << auth.err;
  EXPECT_NE(auth.out.find("\"RES\""), std::string::npos) << auth.out;
}

TEST_F(TheShippedOfonoCompatPolicy, StopsEveryoneElseAtTheBus) {
  // Nobody, a user without a group, and the agent group, which has no business with a SIM.
  for (const std::vector<gid_t>& groups : {std::vector<gid_t>{}, std::vector<gid_t>{kAgentGroup.gid}}) {
    for (const char* method : {"org.ofono.Manager.GetModems", "org.freedesktop.DBus.Peer.Ping"}) {
      auto r = send_in_group(groups, "/", method);
      EXPECT_NE(r.exit_code, 0) << method;
      EXPECT_NE(r.err.find("org.freedesktop.DBus.Error.AccessDenied"), std::string::npos) << method << ": " << r.err;
    }
  }
  auto own = test::run(as_user(
      kNobody, {"dbus-send", "--bus=" + bus_.address(), "--print-reply", "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus", "org.freedesktop.DBus.RequestName", "string:org.ofono", "uint32:4"}));
  EXPECT_NE(own.err.find("not allowed to own"), std::string::npos) << own.err;
}

TEST_F(TheShippedOfonoCompatPolicy, LeavesTheFinalWordToMcimdsRoles) {
  // The modem group passes the bus for the methods it reads with; mcimd still refuses what its
  // roles do not allow (here: a member it lists for nobody).
  auto set = send_in_group({kModemGroup.gid}, "/mcimd_0", "org.ofono.SimAuthentication.SetProperty",
                           {"string:X", "variant:string:y"});
  EXPECT_NE(set.exit_code, 0);
  EXPECT_NE(set.err.find("org.mcimd.Tre1.Error.NotAuthorized"), std::string::npos) << set.err;
}

TEST_F(TheShippedBusPolicy, LetsOnlyRootOwnTheName) {
  auto r = test::run(as_user(
      kNobody, {"dbus-send", "--bus=" + bus_.address(), "--print-reply", "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus", "org.freedesktop.DBus.RequestName", "string:org.mcimd.Tre1", "uint32:4"}));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("org.freedesktop.DBus.Error.AccessDenied"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not allowed to own"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mcimd::api
