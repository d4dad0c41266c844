#include "dbus-api/client.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string_view>

#include "dbus-api/names.hpp"

namespace mcimd::api {

std::string CallError::short_name() const {
  auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

namespace {

constexpr const char* kPropertiesInterface = "org.freedesktop.DBus.Properties";

tl::unexpected<CallError> call_failed(int r, const BusError& error) {
  if (error.is_set())
    return tl::unexpected(CallError{error.name() ? error.name() : "", error.message() ? error.message() : ""});
  BusError mapped;
  sd_bus_error_set_errno(mapped.get(), r);
  return tl::unexpected(CallError{mapped.name() ? mapped.name() : "System.Error", std::strerror(r < 0 ? -r : r)});
}

tl::unexpected<CallError> bad_reply(int r, std::string_view what) {
  return tl::unexpected(CallError{"org.freedesktop.DBus.Error.InvalidSignature",
                                  "Unexpected reply to " + std::string(what) + ": " + std::strerror(r < 0 ? -r : r)});
}

CallResult<SdBusMessage> new_call(sd_bus* bus, const std::string& path, const char* interface, const char* member) {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(bus, &raw, kBusName, path.c_str(), interface, member);
  if (r < 0) return call_failed(r, BusError{});
  return SdBusMessage(raw);
}

CallResult<SdBusMessage> call(sd_bus* bus, sd_bus_message* m, uint64_t timeout_usec = 0 /* sd-bus default */) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call(bus, m, timeout_usec, error.get(), &raw);
  if (r < 0) return call_failed(r, error);
  return SdBusMessage(raw);
}

// Reads a{sv} holding only string-like values ('s', 'o').
CallResult<std::map<std::string, std::string>> read_string_properties(sd_bus_message* reply, std::string_view what) {
  std::map<std::string, std::string> out;
  int r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_ARRAY, "{sv}");
  if (r < 0) return bad_reply(r, what);
  while ((r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
    const char* name = nullptr;
    r = sd_bus_message_read(reply, "s", &name);
    if (r < 0) return bad_reply(r, what);
    char type = 0;
    const char* contents = nullptr;
    r = sd_bus_message_peek_type(reply, &type, &contents);
    if (r < 0) return bad_reply(r, what);
    if (contents && (std::string_view(contents) == "s" || std::string_view(contents) == "o")) {
      const char* value = nullptr;
      r = sd_bus_message_read(reply, "v", contents, &value);
      if (r < 0) return bad_reply(r, what);
      out[name] = value;
    } else {
      r = sd_bus_message_skip(reply, "v");
      if (r < 0) return bad_reply(r, what);
    }
    r = sd_bus_message_exit_container(reply);
    if (r < 0) return bad_reply(r, what);
  }
  if (r < 0) return bad_reply(r, what);
  r = sd_bus_message_exit_container(reply);
  if (r < 0) return bad_reply(r, what);
  return out;
}

CallResult<std::map<std::string, std::string>> get_all(sd_bus* bus, const std::string& path, const char* interface) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus, kBusName, path.c_str(), kPropertiesInterface, "GetAll", error.get(), &raw, "s",
                             interface);
  if (r < 0) return call_failed(r, error);
  SdBusMessage reply(raw);
  return read_string_properties(reply.get(), "GetAll");
}

// Reads a{say} into (key → bytes) with secure storage: the values may be RES, CK, IK or Kc.
CallResult<std::map<std::string, SecureBytes>> read_say_dict(sd_bus_message* reply, std::string_view what) {
  std::map<std::string, SecureBytes> out;
  int r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_ARRAY, "{say}");
  if (r < 0) return bad_reply(r, what);
  while ((r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_DICT_ENTRY, "say")) > 0) {
    const char* key = nullptr;
    r = sd_bus_message_read(reply, "s", &key);
    if (r < 0) return bad_reply(r, what);
    const void* data = nullptr;
    size_t size = 0;
    r = sd_bus_message_read_array(reply, 'y', &data, &size);
    if (r < 0) return bad_reply(r, what);
    auto* p = static_cast<const uint8_t*>(data);
    out[key] = size ? SecureBytes(p, p + size) : SecureBytes{};
    r = sd_bus_message_exit_container(reply);
    if (r < 0) return bad_reply(r, what);
  }
  if (r < 0) return bad_reply(r, what);
  r = sd_bus_message_exit_container(reply);
  if (r < 0) return bad_reply(r, what);
  return out;
}

// Reads one "ay" argument.
CallResult<Bytes> read_bytes(sd_bus_message* reply, std::string_view what) {
  const void* data = nullptr;
  size_t size = 0;
  int r = sd_bus_message_read_array(reply, 'y', &data, &size);
  if (r < 0) return bad_reply(r, what);
  auto* p = static_cast<const uint8_t*>(data);
  return size ? Bytes(p, p + size) : Bytes{};
}

std::string value_or_empty(const std::map<std::string, std::string>& props, const char* key) {
  auto it = props.find(key);
  return it == props.end() ? std::string() : it->second;
}

ProfileProperties profile_from(const std::string& path, const std::map<std::string, std::string>& props) {
  ProfileProperties out;
  out.path = path;
  out.index = parse_profile_path(path).value_or(0);
  out.iccid = value_or_empty(props, "Iccid");
  out.imsi = value_or_empty(props, "Imsi");
  out.operator_id = value_or_empty(props, "OperatorId");
  out.state = value_or_empty(props, "State");
  out.profile_class = value_or_empty(props, "Class");
  return out;
}

}  // namespace

CallResult<Client> Client::connect(const std::optional<std::string>& address) {
  register_error_map();
  sd_bus* raw = nullptr;
  int r = 0;
  std::string where = address ? *address : "the system bus";
  if (address) {
    r = sd_bus_new(&raw);
    if (r >= 0) {
      SdBus bus(raw);
      r = sd_bus_set_address(bus.get(), address->c_str());
      if (r >= 0) r = sd_bus_set_bus_client(bus.get(), 1);
      if (r >= 0) r = sd_bus_start(bus.get());
      raw = r >= 0 ? bus.release() : nullptr;
    }
  } else {
    r = sd_bus_open_system(&raw);
  }
  if (r < 0)
    return tl::unexpected(
        CallError{kNoServerError, "Failed to connect to " + where + ": " + std::strerror(r < 0 ? -r : r)});
  return Client(SdBus(raw));
}

CallResult<std::vector<std::string>> Client::list_profiles() {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kRootPath, kManagerInterface, "ListProfiles", error.get(), &raw, "");
  if (r < 0) return call_failed(r, error);
  SdBusMessage reply(raw);
  std::vector<std::string> paths;
  r = sd_bus_message_enter_container(reply.get(), SD_BUS_TYPE_ARRAY, "o");
  if (r < 0) return bad_reply(r, "ListProfiles");
  const char* path = nullptr;
  while ((r = sd_bus_message_read(reply.get(), "o", &path)) > 0) paths.emplace_back(path);
  if (r < 0) return bad_reply(r, "ListProfiles");
  r = sd_bus_message_exit_container(reply.get());
  if (r < 0) return bad_reply(r, "ListProfiles");
  return paths;
}

CallResult<std::vector<ProfileProperties>> Client::managed_profiles() {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kRootPath, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                             error.get(), &raw, "");
  if (r < 0) return call_failed(r, error);
  SdBusMessage reply(raw);
  sd_bus_message* m = reply.get();
  std::vector<ProfileProperties> out;
  r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{oa{sa{sv}}}");
  if (r < 0) return bad_reply(r, "GetManagedObjects");
  while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "oa{sa{sv}}")) > 0) {
    const char* path = nullptr;
    r = sd_bus_message_read(m, "o", &path);
    if (r < 0) return bad_reply(r, "GetManagedObjects");
    std::optional<std::map<std::string, std::string>> props;
    r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sa{sv}}");
    if (r < 0) return bad_reply(r, "GetManagedObjects");
    while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sa{sv}")) > 0) {
      const char* interface = nullptr;
      r = sd_bus_message_read(m, "s", &interface);
      if (r < 0) return bad_reply(r, "GetManagedObjects");
      if (std::string_view(interface) == kProfileInterface) {
        auto read = read_string_properties(m, "GetManagedObjects");
        if (!read) return tl::unexpected(read.error());
        props = std::move(*read);
      } else {
        r = sd_bus_message_skip(m, "a{sv}");
        if (r < 0) return bad_reply(r, "GetManagedObjects");
      }
      r = sd_bus_message_exit_container(m);
      if (r < 0) return bad_reply(r, "GetManagedObjects");
    }
    if (r < 0) return bad_reply(r, "GetManagedObjects");
    r = sd_bus_message_exit_container(m);
    if (r >= 0) r = sd_bus_message_exit_container(m);
    if (r < 0) return bad_reply(r, "GetManagedObjects");
    if (props) out.push_back(profile_from(path, *props));
  }
  if (r < 0) return bad_reply(r, "GetManagedObjects");
  r = sd_bus_message_exit_container(m);
  if (r < 0) return bad_reply(r, "GetManagedObjects");
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  return out;
}

CallResult<ProfileProperties> Client::profile(const std::string& path) {
  auto props = get_all(bus_.get(), path, kProfileInterface);
  if (!props) return tl::unexpected(props.error());
  return profile_from(path, *props);
}

CallResult<ManagerProperties> Client::manager() {
  auto props = get_all(bus_.get(), kRootPath, kManagerInterface);
  if (!props) return tl::unexpected(props.error());
  return ManagerProperties{value_or_empty(*props, "ActiveProfile"), value_or_empty(*props, "PlatformState")};
}

CallResult<std::string> Client::install_profile(int fd) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kRootPath, kManagerInterface, "InstallProfile", error.get(), &raw,
                             "h", fd);
  if (r < 0) return call_failed(r, error);
  SdBusMessage reply(raw);
  const char* path = nullptr;
  r = sd_bus_message_read(reply.get(), "o", &path);
  if (r < 0) return bad_reply(r, "InstallProfile");
  return std::string(path);
}

CallResult<void> Client::profile_command(const char* member, const std::string& path) {
  BusError error;
  int r = sd_bus_call_method(bus_.get(), kBusName, kRootPath, kManagerInterface, member, error.get(), nullptr, "o",
                             path.c_str());
  if (r < 0) return call_failed(r, error);
  return {};
}

CallResult<void> Client::enable_profile(const std::string& path) { return profile_command("EnableProfile", path); }
CallResult<void> Client::disable_profile(const std::string& path) { return profile_command("DisableProfile", path); }
CallResult<void> Client::delete_profile(const std::string& path) { return profile_command("DeleteProfile", path); }

CallResult<UmtsAuthResult> Client::umts_like(const char* member, const std::string& path, const Bytes& rand,
                                             const Bytes& autn) {
  auto m = new_call(bus_.get(), path, kUsimInterface, member);
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_append_array(m->get(), 'y', rand.data(), rand.size());
  if (r >= 0) r = sd_bus_message_append_array(m->get(), 'y', autn.data(), autn.size());
  if (r < 0) return call_failed(r, BusError{});
  auto reply = call(bus_.get(), m->get());
  if (!reply) return tl::unexpected(reply.error());
  auto dict = read_say_dict(reply->get(), member);
  if (!dict) return tl::unexpected(dict.error());
  UmtsAuthResult out;
  auto take = [&](const char* key) -> std::optional<SecureBytes> {
    auto it = dict->find(key);
    if (it == dict->end()) return std::nullopt;
    return std::move(it->second);
  };
  out.res = take("RES");
  out.ck = take("CK");
  out.ik = take("IK");
  if (auto auts = take("AUTS")) out.auts = Bytes(auts->begin(), auts->end());
  return out;
}

CallResult<UmtsAuthResult> Client::umts_authenticate(const std::string& path, const Bytes& rand, const Bytes& autn) {
  return umts_like("UmtsAuthenticate", path, rand, autn);
}

CallResult<UmtsAuthResult> Client::ims_authenticate(const std::string& path, const Bytes& rand, const Bytes& autn) {
  return umts_like("ImsAuthenticate", path, rand, autn);
}

CallResult<std::vector<GsmAuthResult>> Client::gsm_authenticate(const std::string& path,
                                                                const std::vector<Bytes>& rands) {
  auto m = new_call(bus_.get(), path, kUsimInterface, "GsmAuthenticate");
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_open_container(m->get(), SD_BUS_TYPE_ARRAY, "ay");
  for (const Bytes& rand : rands)
    if (r >= 0) r = sd_bus_message_append_array(m->get(), 'y', rand.data(), rand.size());
  if (r >= 0) r = sd_bus_message_close_container(m->get());
  if (r < 0) return call_failed(r, BusError{});
  auto reply = call(bus_.get(), m->get());
  if (!reply) return tl::unexpected(reply.error());
  std::vector<GsmAuthResult> out;
  r = sd_bus_message_enter_container(reply->get(), SD_BUS_TYPE_ARRAY, "a{say}");
  if (r < 0) return bad_reply(r, "GsmAuthenticate");
  for (;;) {
    r = sd_bus_message_at_end(reply->get(), /*complete=*/0);
    if (r < 0) return bad_reply(r, "GsmAuthenticate");
    if (r > 0) break;
    auto dict = read_say_dict(reply->get(), "GsmAuthenticate");
    if (!dict) return tl::unexpected(dict.error());
    GsmAuthResult triplet;
    if (auto it = dict->find("SRES"); it != dict->end()) triplet.sres = std::move(it->second);
    if (auto it = dict->find("Kc"); it != dict->end()) triplet.kc = std::move(it->second);
    out.push_back(std::move(triplet));
  }
  r = sd_bus_message_exit_container(reply->get());
  if (r < 0) return bad_reply(r, "GsmAuthenticate");
  return out;
}

CallResult<EndorsementData> Client::get_endorsement(const std::string& ek_type) {
  auto m = new_call(bus_.get(), kRootPath, kAttestationInterface, "GetEndorsement");
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_append(m->get(), "s", ek_type.c_str());
  if (r < 0) return call_failed(r, BusError{});
  auto reply = call(bus_.get(), m->get(), kAttestationTimeoutUsec);
  if (!reply) return tl::unexpected(reply.error());
  EndorsementData out;
  auto ek_public = read_bytes(reply->get(), "GetEndorsement");
  if (!ek_public) return tl::unexpected(ek_public.error());
  auto ek_certificate = read_bytes(reply->get(), "GetEndorsement");
  if (!ek_certificate) return tl::unexpected(ek_certificate.error());
  auto ak_public = read_bytes(reply->get(), "GetEndorsement");
  if (!ak_public) return tl::unexpected(ak_public.error());
  out.ek_public = std::move(*ek_public);
  if (!ek_certificate->empty()) out.ek_certificate = std::move(*ek_certificate);
  out.ak_public = std::move(*ak_public);
  return out;
}

CallResult<SecureBytes> Client::activate_credential(const std::string& ek_type, const Bytes& credential_blob,
                                                    const Bytes& encrypted_secret) {
  auto m = new_call(bus_.get(), kRootPath, kAttestationInterface, "ActivateCredential");
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_append(m->get(), "s", ek_type.c_str());
  if (r >= 0) r = sd_bus_message_append_array(m->get(), 'y', credential_blob.data(), credential_blob.size());
  if (r >= 0) r = sd_bus_message_append_array(m->get(), 'y', encrypted_secret.data(), encrypted_secret.size());
  if (r < 0) return call_failed(r, BusError{});
  auto reply = call(bus_.get(), m->get(), kAttestationTimeoutUsec);
  if (!reply) return tl::unexpected(reply.error());
  const void* data = nullptr;
  size_t size = 0;
  r = sd_bus_message_read_array(reply->get(), 'y', &data, &size);
  if (r < 0) return bad_reply(r, "ActivateCredential");
  auto* p = static_cast<const uint8_t*>(data);
  SecureBytes secret = size ? SecureBytes(p, p + size) : SecureBytes{};
  // The received message is heap memory sd-bus owns for us; only the reading API is const.
  if (size) wipe(const_cast<void*>(data), size);
  return secret;
}

CallResult<std::string> Client::get_evidence(const Bytes& nonce) {
  auto m = new_call(bus_.get(), kRootPath, kAttestationInterface, "GetEvidence");
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_append_array(m->get(), 'y', nonce.data(), nonce.size());
  if (r < 0) return call_failed(r, BusError{});
  auto reply = call(bus_.get(), m->get(), kAttestationTimeoutUsec);
  if (!reply) return tl::unexpected(reply.error());
  const char* evidence = nullptr;
  r = sd_bus_message_read(reply->get(), "s", &evidence);
  if (r < 0) return bad_reply(r, "GetEvidence");
  return std::string(evidence);
}

CallResult<PlatformReport> Client::validate_platform(const std::string& signed_policy, const Bytes& nonce) {
  auto m = new_call(bus_.get(), kRootPath, kAttestationInterface, "ValidatePlatform");
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_append(m->get(), "s", signed_policy.c_str());
  if (r >= 0) r = sd_bus_message_append_array(m->get(), 'y', nonce.data(), nonce.size());
  if (r < 0) return call_failed(r, BusError{});
  auto reply = call(bus_.get(), m->get(), kAttestationTimeoutUsec);
  if (!reply) return tl::unexpected(reply.error());
  PlatformReport out;
  const char* report = nullptr;
  r = sd_bus_message_read(reply->get(), "s", &report);
  if (r < 0) return bad_reply(r, "ValidatePlatform");
  out.report_json = report;
  auto message = read_bytes(reply->get(), "ValidatePlatform");
  if (!message) return tl::unexpected(message.error());
  auto signature = read_bytes(reply->get(), "ValidatePlatform");
  if (!signature) return tl::unexpected(signature.error());
  out.quote_message = std::move(*message);
  out.quote_signature = std::move(*signature);
  return out;
}

CallResult<std::string> Client::add_pcr_policy(const std::string& document) {
  auto m = new_call(bus_.get(), kRootPath, kManagerInterface, "AddPcrPolicy");
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_append(m->get(), "s", document.c_str());
  if (r < 0) return call_failed(r, BusError{});
  // Unlocking the store after a new policy takes a few TPM commands, a ticket among them.
  auto reply = call(bus_.get(), m->get(), kAttestationTimeoutUsec);
  if (!reply) return tl::unexpected(reply.error());
  const char* id = nullptr;
  r = sd_bus_message_read(reply->get(), "s", &id);
  if (r < 0) return bad_reply(r, "AddPcrPolicy");
  return std::string(id);
}

CallResult<std::string> Client::request_package(const std::string& session, const Bytes& operator_nonce) {
  auto m = new_call(bus_.get(), kRootPath, kManagerInterface, "RequestPackage");
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_append(m->get(), "s", session.c_str());
  if (r >= 0) r = sd_bus_message_append_array(m->get(), 'y', operator_nonce.data(), operator_nonce.size());
  if (r < 0) return call_failed(r, BusError{});
  // A quote and a certification: a few signatures in the TPM.
  auto reply = call(bus_.get(), m->get(), kAttestationTimeoutUsec);
  if (!reply) return tl::unexpected(reply.error());
  const char* request = nullptr;
  r = sd_bus_message_read(reply->get(), "s", &request);
  if (r < 0) return bad_reply(r, "RequestPackage");
  return std::string(request);
}

namespace {
// The (o profile, s receipt) answer of InstallPackage and ChangeSubscription.
CallResult<Client::Installed> installed_from(sd_bus_message* reply, std::string_view method) {
  const char* path = nullptr;
  const char* receipt = nullptr;
  int r = sd_bus_message_read(reply, "os", &path, &receipt);
  if (r < 0) return bad_reply(r, method);
  return Client::Installed{path, receipt};
}
}  // namespace

CallResult<Client::Installed> Client::install_package(const std::string& package) {
  auto m = new_call(bus_.get(), kRootPath, kManagerInterface, "InstallPackage");
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_append(m->get(), "s", package.c_str());
  if (r < 0) return call_failed(r, BusError{});
  // Two imports, a load, a commit with its counter increment and a quote.
  auto reply = call(bus_.get(), m->get(), kAttestationTimeoutUsec);
  if (!reply) return tl::unexpected(reply.error());
  return installed_from(reply->get(), "InstallPackage");
}

CallResult<Client::Installed> Client::change_subscription(const std::string& release, const std::string& package) {
  auto m = new_call(bus_.get(), kRootPath, kManagerInterface, "ChangeSubscription");
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_append(m->get(), "ss", release.c_str(), package.c_str());
  if (r < 0) return call_failed(r, BusError{});
  // As InstallPackage, and the release's verification.
  auto reply = call(bus_.get(), m->get(), kAttestationTimeoutUsec);
  if (!reply) return tl::unexpected(reply.error());
  return installed_from(reply->get(), "ChangeSubscription");
}

CallResult<std::string> Client::confirm_profile(const std::string& path) {
  auto m = new_call(bus_.get(), kRootPath, kManagerInterface, "ConfirmProfile");
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_append(m->get(), "o", path.c_str());
  if (r < 0) return call_failed(r, BusError{});
  // An NV increment, a commit and a quote.
  auto reply = call(bus_.get(), m->get(), kAttestationTimeoutUsec);
  if (!reply) return tl::unexpected(reply.error());
  const char* receipt = nullptr;
  r = sd_bus_message_read(reply->get(), "s", &receipt);
  if (r < 0) return bad_reply(r, "ConfirmProfile");
  return std::string(receipt);
}

CallResult<std::vector<std::string>> Client::deletion_receipts() {
  auto m = new_call(bus_.get(), kRootPath, kManagerInterface, "DeletionReceipts");
  if (!m) return tl::unexpected(m.error());
  // One quote per receipt.
  auto reply = call(bus_.get(), m->get(), kAttestationTimeoutUsec);
  if (!reply) return tl::unexpected(reply.error());
  std::vector<std::string> out;
  int r = sd_bus_message_enter_container(reply->get(), SD_BUS_TYPE_ARRAY, "s");
  if (r < 0) return bad_reply(r, "DeletionReceipts");
  const char* text = nullptr;
  while ((r = sd_bus_message_read(reply->get(), "s", &text)) > 0) out.emplace_back(text);
  if (r < 0) return bad_reply(r, "DeletionReceipts");
  r = sd_bus_message_exit_container(reply->get());
  if (r < 0) return bad_reply(r, "DeletionReceipts");
  return out;
}

CallResult<std::string> Client::apply_command(const std::string& command) {
  auto m = new_call(bus_.get(), kRootPath, kManagerInterface, "ApplyCommand");
  if (!m) return tl::unexpected(m.error());
  int r = sd_bus_message_append(m->get(), "s", command.c_str());
  if (r < 0) return call_failed(r, BusError{});
  // A commit, and for a delete an NV increment and a quote.
  auto reply = call(bus_.get(), m->get(), kAttestationTimeoutUsec);
  if (!reply) return tl::unexpected(reply.error());
  const char* result = nullptr;
  r = sd_bus_message_read(reply->get(), "s", &result);
  if (r < 0) return bad_reply(r, "ApplyCommand");
  return std::string(result);
}

CallResult<void> Client::request_fallback() {
  auto m = new_call(bus_.get(), kRootPath, kManagerInterface, "RequestFallback");
  if (!m) return tl::unexpected(m.error());
  auto reply = call(bus_.get(), m->get());
  if (!reply) return tl::unexpected(reply.error());
  return {};
}

CallResult<std::vector<PcrPolicyInfo>> Client::list_pcr_policies() {
  auto m = new_call(bus_.get(), kRootPath, kManagerInterface, "ListPcrPolicies");
  if (!m) return tl::unexpected(m.error());
  auto reply = call(bus_.get(), m->get());
  if (!reply) return tl::unexpected(reply.error());
  std::vector<PcrPolicyInfo> out;
  int r = sd_bus_message_enter_container(reply->get(), SD_BUS_TYPE_ARRAY, "(ssb)");
  if (r < 0) return bad_reply(r, "ListPcrPolicies");
  const char* id = nullptr;
  const char* pcrs = nullptr;
  int active = 0;
  while ((r = sd_bus_message_read(reply->get(), "(ssb)", &id, &pcrs, &active)) > 0)
    out.push_back(PcrPolicyInfo{id, pcrs, active != 0});
  if (r < 0) return bad_reply(r, "ListPcrPolicies");
  r = sd_bus_message_exit_container(reply->get());
  if (r < 0) return bad_reply(r, "ListPcrPolicies");
  return out;
}

}  // namespace mcimd::api
