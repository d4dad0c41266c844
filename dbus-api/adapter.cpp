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
#include "dbus-api/manager_dbus.hpp"
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
  MCIMD_CHECK(check(sd_bus_add_object_vtable(bus, &slot, kRootPath, kManagerInterface, manager_vtable, &s.service),
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
