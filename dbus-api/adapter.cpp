#include "dbus-api/adapter.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.hpp"
#include "common/log.hpp"
#include "dbus-api/bus_filter.hpp"
#include "dbus-api/bus_reply.hpp"
#include "dbus-api/names.hpp"
#include "dbus-api/profile_dbus.hpp"

namespace mcimd::api {

struct BusAdapter::State {
  SdBusRef bus;
  Service& service;
  BusAdapterOptions options;
  ProfileObjects profiles;
  bool owns_name = false;
  SdBusSlot filter_slot, manager_slot, attestation_slot, object_manager_slot, profile_slot, usim_slot,
      enumerator_slot;

  State(sd_bus* b, Service& s, BusAdapterOptions o)
      : bus(sd_bus_ref(b)), service(s), options(std::move(o)), profiles(s) {}
};

namespace {

using State = BusAdapter::State;

State& state_of(void* userdata) { return *static_cast<State*>(userdata); }

// The profile a call addresses: `path` must be a profile object path of an installed profile.
Result<ProfileInfo> profile_at(const State& s, std::string_view path) {
  auto index = parse_profile_path(path);
  if (!index)
    return fail(Code::InvalidArgument,
                "'" + std::string(path) + "' is not a profile object path (" + kProfilePathPrefix + "/<index>)");
  auto info = s.service.find_profile(*index);
  if (!info) return fail(Code::NotFound, "No profile at " + std::string(path));
  return *info;
}

// Reads the profile document from a descriptor the caller passed. Checks: a regular file (or
// memfd) — a pipe or socket could block the event loop forever; readable; at most
// kMaxProfileDocumentSize bytes. The text holds K and OPc, so it goes into a SecureString.
Result<SecureString> read_profile_document(int fd) {
  struct stat st {};
  if (fstat(fd, &st) < 0)
    return fail(Code::InvalidArgument, "Cannot inspect the passed descriptor: " + errno_text(errno));
  if (!S_ISREG(st.st_mode))
    return fail(Code::InvalidArgument, "The profile document must be passed as a regular file or memfd descriptor");
  if (st.st_size < 0 || static_cast<std::size_t>(st.st_size) > kMaxProfileDocumentSize)
    return fail(Code::InvalidArgument, "The profile document is " + std::to_string(st.st_size) + " bytes; at most " +
                                           std::to_string(kMaxProfileDocumentSize) + " are accepted");
  // Read from offset 0 whatever the descriptor's position, one byte beyond the limit to notice a
  // file that grew after fstat().
  SecureString text(kMaxProfileDocumentSize + 1, '\0');
  std::size_t used = 0;
  while (used < text.size()) {
    ssize_t n = pread(fd, text.data() + used, text.size() - used, static_cast<off_t>(used));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(Code::InvalidArgument, "Cannot read the passed descriptor: " + errno_text(errno));
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  if (used > kMaxProfileDocumentSize)
    return fail(Code::InvalidArgument,
                "The profile document exceeds " + std::to_string(kMaxProfileDocumentSize) + " bytes");
  if (used == 0) return fail(Code::InvalidArgument, "The profile document is empty");
  text.resize(used);
  return text;
}

// ---- org.mcimd.Tre1.Manager ----

int method_list_profiles(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "ListProfiles", [&]() -> int {
    State& s = state_of(userdata);
    auto profiles = s.service.list_profiles();
    std::sort(profiles.begin(), profiles.end(), [](auto& a, auto& b) { return a.index < b.index; });
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    if (r < 0) return r;
    SdBusMessage reply(raw);
    r = sd_bus_message_open_container(reply.get(), SD_BUS_TYPE_ARRAY, "o");
    if (r < 0) return r;
    for (const auto& p : profiles) {
      r = sd_bus_message_append(reply.get(), "o", profile_path(p.index).c_str());
      if (r < 0) return r;
    }
    r = sd_bus_message_close_container(reply.get());
    if (r < 0) return r;
    return sd_bus_send(nullptr, reply.get(), nullptr);
  });
}

int method_install_profile(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "InstallProfile", [&]() -> int {
    State& s = state_of(userdata);
    int fd = -1;  // owned by the message
    int r = sd_bus_message_read(m, "h", &fd);
    if (r < 0) return r;
    auto document = read_profile_document(fd);
    if (!document) return set_error(ret_error, document.error());
    return dispatch(m, "InstallProfile", [&](const Pending& pending) {
      s.service.install_profile(
          std::move(*document), replying<ProfileInfo>(pending, [](PendingCall& call, Result<ProfileInfo> result) {
            if (!result) return call.fail(result.error());
            std::string path = profile_path(result->index);
            call.succeed([&](sd_bus_message* reply) { return sd_bus_message_append(reply, "o", path.c_str()); });
          }));
    });
  });
}

// EnableProfile, DisableProfile and DeleteProfile share their shape: one profile path in,
// nothing out.
template <class Call>
int profile_command(sd_bus_message* m, void* userdata, sd_bus_error* ret_error, std::string_view what, Call call) {
  return guarded(ret_error, what, [&]() -> int {
    State& s = state_of(userdata);
    const char* path = nullptr;
    int r = sd_bus_message_read(m, "o", &path);
    if (r < 0) return r;
    auto profile = profile_at(s, path);
    if (!profile) return set_error(ret_error, profile.error());
    return dispatch(m, std::string(what), [&](const Pending& pending) {
      call(s.service, profile->id, replying<void>(pending, reply_status));
    });
  });
}

int method_enable_profile(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return profile_command(
      m, userdata, ret_error, "EnableProfile",
      [](Service& s, const std::string& id, Reply<void> reply) { s.enable_profile(id, std::move(reply)); });
}

int method_disable_profile(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return profile_command(
      m, userdata, ret_error, "DisableProfile",
      [](Service& s, const std::string& id, Reply<void> reply) { s.disable_profile(id, std::move(reply)); });
}

int method_delete_profile(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return profile_command(
      m, userdata, ret_error, "DeleteProfile",
      [](Service& s, const std::string& id, Reply<void> reply) { s.delete_profile(id, std::move(reply)); });
}

int property_get_active_profile(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                                sd_bus_error* ret_error) {
  return guarded(ret_error, "ActiveProfile", [&]() -> int {
    State& s = state_of(userdata);
    std::string active = s.service.active_profile();
    std::string path = "/";  // no active profile: the conventional null object path
    if (!active.empty()) {
      for (const auto& p : s.service.list_profiles())
        if (p.id == active) path = profile_path(p.index);
    }
    return sd_bus_message_append(reply, "o", path.c_str());
  });
}

int property_get_platform_state(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                                sd_bus_error* ret_error) {
  return guarded(ret_error, "PlatformState", [&]() -> int {
    return sd_bus_message_append(reply, "s", state_of(userdata).service.platform_state().c_str());
  });
}

// ---- org.mcimd.Tre1.Attestation ----

Result<std::string> read_ek_type(sd_bus_message* m) {
  const char* ek_type = nullptr;
  int r = sd_bus_message_read(m, "s", &ek_type);
  if (r < 0) return fail(Code::InvalidArgument, "Cannot read ek_type: " + errno_text(r));
  std::string_view type = ek_type;
  if (type != kEkTypeEcc && type != kEkTypeRsa)
    return fail(Code::InvalidArgument, "ek_type must be \"" + std::string(kEkTypeEcc) + "\" or \"" +
                                           std::string(kEkTypeRsa) + "\", got \"" + std::string(type) + "\"");
  return std::string(type);
}

Result<Bytes> read_nonce(sd_bus_message* m) {
  return read_bounded_bytes(m, "nonce", 1, kMaxAttestationNonceSize);
}

int append_bytes(sd_bus_message* reply, std::span<const uint8_t> data) {
  return sd_bus_message_append_array(reply, 'y', data.data(), data.size());
}

// Checks: ek_type is "ecc" or "rsa".
int method_get_endorsement(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "GetEndorsement", [&]() -> int {
    State& s = state_of(userdata);
    auto ek_type = read_ek_type(m);
    if (!ek_type) return set_error(ret_error, ek_type.error());
    return dispatch(m, "GetEndorsement", [&](const Pending& pending) {
      s.service.get_endorsement(
          *ek_type, replying<EndorsementData>(pending, [](PendingCall& call, Result<EndorsementData> result) {
            if (!result) return call.fail(result.error());
            call.succeed([&](sd_bus_message* reply) {
              int r = append_bytes(reply, result->ek_public);
              // No EK certificate in the TPM's NV: an empty array (a DER certificate never is).
              if (r >= 0) r = append_bytes(reply, result->ek_certificate.value_or(Bytes{}));
              if (r >= 0) r = append_bytes(reply, result->ak_public);
              return r;
            });
          }));
    });
  });
}

// Checks: ek_type is "ecc" or "rsa"; credential_blob and encrypted_secret hold 1 to
// kMaxCredentialPartSize bytes each. The released secret is wiped from the sent reply.
int method_activate_credential(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "ActivateCredential", [&]() -> int {
    State& s = state_of(userdata);
    auto ek_type = read_ek_type(m);
    if (!ek_type) return set_error(ret_error, ek_type.error());
    auto blob = read_bounded_bytes(m, "credential_blob", 1, kMaxCredentialPartSize);
    if (!blob) return set_error(ret_error, blob.error());
    auto secret = read_bounded_bytes(m, "encrypted_secret", 1, kMaxCredentialPartSize);
    if (!secret) return set_error(ret_error, secret.error());
    return dispatch(m, "ActivateCredential", [&](const Pending& pending) {
      s.service.activate_credential(
          *ek_type, std::move(*blob), std::move(*secret),
          replying<SecureBytes>(pending, [](PendingCall& call, Result<SecureBytes> result) {
            if (!result) return call.fail(result.error());
            call.succeed([&](sd_bus_message* reply) { return append_bytes(reply, *result); }, /*secret=*/true);
          }));
    });
  });
}

// Checks: the nonce holds 1 to kMaxAttestationNonceSize bytes.
int method_get_evidence(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "GetEvidence", [&]() -> int {
    State& s = state_of(userdata);
    auto nonce = read_nonce(m);
    if (!nonce) return set_error(ret_error, nonce.error());
    return dispatch(m, "GetEvidence", [&](const Pending& pending) {
      s.service.get_evidence(std::move(*nonce),
                             replying<std::string>(pending, [](PendingCall& call, Result<std::string> result) {
                               if (!result) return call.fail(result.error());
                               call.succeed([&](sd_bus_message* reply) {
                                 return sd_bus_message_append(reply, "s", result->c_str());
                               });
                             }));
    });
  });
}

// Checks: signed_policy is 1 to kMaxSignedPolicySize bytes (sd-bus has already checked it is
// UTF-8 without NUL); the nonce holds 1 to kMaxAttestationNonceSize bytes. The policy's signature
// and content are the Service's to check.
int method_validate_platform(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "ValidatePlatform", [&]() -> int {
    State& s = state_of(userdata);
    const char* policy = nullptr;
    int r = sd_bus_message_read(m, "s", &policy);
    if (r < 0) return set_error(ret_error, Error{Code::InvalidArgument, "Cannot read signed_policy: " + errno_text(r),
                                                 std::nullopt});
    std::string_view signed_policy = policy;
    if (signed_policy.empty() || signed_policy.size() > kMaxSignedPolicySize)
      return set_error(ret_error, Error{Code::InvalidArgument,
                                        "signed_policy must be 1 to " + std::to_string(kMaxSignedPolicySize) +
                                            " bytes, got " + std::to_string(signed_policy.size()),
                                        std::nullopt});
    auto nonce = read_nonce(m);
    if (!nonce) return set_error(ret_error, nonce.error());
    return dispatch(m, "ValidatePlatform", [&](const Pending& pending) {
      s.service.validate_platform(
          std::string(signed_policy), std::move(*nonce),
          replying<PlatformReport>(pending, [](PendingCall& call, Result<PlatformReport> result) {
            if (!result) return call.fail(result.error());
            call.succeed([&](sd_bus_message* reply) {
              int r = sd_bus_message_append(reply, "s", result->report_json.c_str());
              if (r >= 0) r = append_bytes(reply, result->quote_message);
              if (r >= 0) r = append_bytes(reply, result->quote_signature);
              return r;
            });
          }));
    });
  });
}
// ---- vtables (kept in sync with org.mcimd.Tre1.xml; a test compares them) ----

const sd_bus_vtable kManagerVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS("ListProfiles", SD_BUS_NO_ARGS, SD_BUS_RESULT("ao", profiles), method_list_profiles,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("InstallProfile", SD_BUS_ARGS("h", document), SD_BUS_RESULT("o", profile),
                            method_install_profile, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("EnableProfile", SD_BUS_ARGS("o", profile), SD_BUS_NO_RESULT, method_enable_profile,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("DisableProfile", SD_BUS_ARGS("o", profile), SD_BUS_NO_RESULT, method_disable_profile,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("DeleteProfile", SD_BUS_ARGS("o", profile), SD_BUS_NO_RESULT, method_delete_profile,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_PROPERTY("ActiveProfile", "o", property_get_active_profile, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("PlatformState", "s", property_get_platform_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_VTABLE_END,
};

// TR 33.812 platform validation: enrolment of the attestation key (TPM2_MakeCredential on the
// operator's side, TPM2_ActivateCredential here), remote validation (evidence) and
// semi-autonomous validation (the device's own verdict on a signed policy).
const sd_bus_vtable kAttestationVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS("GetEndorsement", SD_BUS_ARGS("s", ek_type),
                            SD_BUS_RESULT("ay", ek_public, "ay", ek_certificate, "ay", ak_public),
                            method_get_endorsement, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ActivateCredential",
                            SD_BUS_ARGS("s", ek_type, "ay", credential_blob, "ay", encrypted_secret),
                            SD_BUS_RESULT("ay", secret), method_activate_credential, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("GetEvidence", SD_BUS_ARGS("ay", nonce), SD_BUS_RESULT("s", evidence),
                            method_get_evidence, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ValidatePlatform", SD_BUS_ARGS("s", signed_policy, "ay", nonce),
                            SD_BUS_RESULT("s", report, "ay", quote_message, "ay", quote_signature),
                            method_validate_platform, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

Status check(int r, std::string_view what) {
  if (r >= 0) return {};
  return fail(Code::IoError, "Failed to " + std::string(what) + ": " + errno_text(r));
}

void log_emit_failure(int r, std::string_view what, std::string_view path) {
  if (r >= 0) return;
  log::warning("Failed to emit " + std::string(what) + " for " + std::string(path) + ": " + errno_text(r) +
               ", ignoring.");
}

}  // namespace

BusAdapter::BusAdapter(sd_bus* bus, Service& service, BusAdapterOptions options)
    : state_(std::make_unique<State>(bus, service, std::move(options))) {}

Result<std::unique_ptr<BusAdapter>> BusAdapter::create(sd_bus* bus, Service& service, BusAdapterOptions options) {
  if (!bus) return fail(Code::InvalidArgument, "No bus connection given");
  register_error_map();
  std::unique_ptr<BusAdapter> adapter(new BusAdapter(bus, service, std::move(options)));
  MCIMD_CHECK(adapter->register_objects());
  service.set_listener(adapter.get());
  if (adapter->state_->options.request_name) {
    int r = sd_bus_request_name(bus, kBusName, 0);
    if (r < 0)
      return fail(r == -EEXIST ? Code::AlreadyExists : Code::IoError,
                  std::string("Failed to acquire the bus name ") + kBusName + ": " + errno_text(r));
    adapter->state_->owns_name = true;
  }
  return adapter;
}

Status BusAdapter::register_objects() {
  State& s = *state_;
  sd_bus* bus = s.bus.get();
  void* userdata = &s;
  sd_bus_slot* slot = nullptr;

  MCIMD_CHECK(check(sd_bus_add_filter(bus, &slot, filter_authorize, &s.options.policy),
                    "install the authorisation filter"));
  s.filter_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_object_vtable(bus, &slot, kRootPath, kManagerInterface, kManagerVtable, userdata),
                    "register the Manager interface"));
  s.manager_slot.reset(slot);
  MCIMD_CHECK(check(
      sd_bus_add_object_vtable(bus, &slot, kRootPath, kAttestationInterface, kAttestationVtable, userdata),
      "register the Attestation interface"));
  s.attestation_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_object_manager(bus, &slot, kRootPath), "register the object manager"));
  s.object_manager_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_fallback_vtable(bus, &slot, kProfilePathPrefix, kProfileInterface, profile_vtable,
                                               profile_object_find, &s.profiles),
                    "register the Profile interface"));
  s.profile_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_fallback_vtable(bus, &slot, kProfilePathPrefix, kUsimInterface, usim_vtable,
                                               profile_object_find, &s.profiles),
                    "register the USimApplication interface"));
  s.usim_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_node_enumerator(bus, &slot, kProfilePathPrefix, profile_node_enumerator, &s.profiles),
                    "register the profile enumerator"));
  s.enumerator_slot.reset(slot);
  return {};
}

BusAdapter::~BusAdapter() {
  if (!state_) return;
  state_->service.set_listener(nullptr);
  if (state_->owns_name) {
    int r = sd_bus_release_name_async(state_->bus.get(), nullptr, kBusName, nullptr, nullptr);
    if (r < 0) log::debug(std::string("Failed to release the bus name: ") + errno_text(r) + ", ignoring.");
  }
}

void BusAdapter::profile_added(const ProfileInfo& info) {
  try {
    std::string path = profile_path(info.index);
    int r = sd_bus_emit_interfaces_added(state_->bus.get(), path.c_str(), kProfileInterface, kUsimInterface, nullptr);
    log_emit_failure(r, "InterfacesAdded", path);
  } catch (const std::exception& e) {
    log::warning(std::string("Failed to emit InterfacesAdded: ") + e.what() + ", ignoring.");
  }
}

void BusAdapter::profile_changed(const ProfileInfo& info) {
  try {
    std::string path = profile_path(info.index);
    int r = sd_bus_emit_properties_changed(state_->bus.get(), path.c_str(), kProfileInterface, "State", nullptr);
    log_emit_failure(r, "PropertiesChanged", path);
  } catch (const std::exception& e) {
    log::warning(std::string("Failed to emit PropertiesChanged: ") + e.what() + ", ignoring.");
  }
}

void BusAdapter::profile_removed(const ProfileInfo& info) {
  state_->profiles.forget(info.index);
  try {
    std::string path = profile_path(info.index);
    int r = sd_bus_emit_interfaces_removed(state_->bus.get(), path.c_str(), kProfileInterface, kUsimInterface, nullptr);
    log_emit_failure(r, "InterfacesRemoved", path);
  } catch (const std::exception& e) {
    log::warning(std::string("Failed to emit InterfacesRemoved: ") + e.what() + ", ignoring.");
  }
}

void BusAdapter::manager_changed() {
  try {
    int r = sd_bus_emit_properties_changed(state_->bus.get(), kRootPath, kManagerInterface, "ActiveProfile",
                                           "PlatformState", nullptr);
    log_emit_failure(r, "PropertiesChanged", kRootPath);
  } catch (const std::exception& e) {
    log::warning(std::string("Failed to emit PropertiesChanged: ") + e.what() + ", ignoring.");
  }
}

}  // namespace mcimd::api
