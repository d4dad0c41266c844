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

namespace mcimd::api {

struct BusAdapter::State {
  SdBusRef bus;
  Service& service;
  BusAdapterOptions options;
  bool owns_name = false;
  SdBusSlot filter_slot, manager_slot, attestation_slot, object_manager_slot, profile_slot, usim_slot,
      enumerator_slot;

  State(sd_bus* b, Service& s, BusAdapterOptions o) : bus(sd_bus_ref(b)), service(s), options(std::move(o)) {}
};

namespace {

using State = BusAdapter::State;

// TS 33.102 6.3.3 / TS 35.206: RAND and AUTN are 128 bits each.
constexpr std::size_t kRandSize = 16;
constexpr std::size_t kAutnSize = 16;
// TS 33.102 6.8.1.2 / oFono's GsmAuthenticate: a 2G run uses two or three RANDs; one is allowed
// for callers that only need a single triplet.
constexpr std::size_t kMaxGsmRands = 3;

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

// Byte-array dictionary entries of a{say}.
using SecretEntry = std::pair<const char*, std::span<const uint8_t>>;

int append_say_dict(sd_bus_message* reply, std::span<const SecretEntry> entries) {
  int r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "{say}");
  if (r < 0) return r;
  for (const auto& [key, value] : entries) {
    r = sd_bus_message_open_container(reply, SD_BUS_TYPE_DICT_ENTRY, "say");
    if (r < 0) return r;
    r = sd_bus_message_append(reply, "s", key);
    if (r < 0) return r;
    r = sd_bus_message_append_array(reply, 'y', value.data(), value.size());
    if (r < 0) return r;
    r = sd_bus_message_close_container(reply);
    if (r < 0) return r;
  }
  return sd_bus_message_close_container(reply);
}

void reply_umts(PendingCall& pending, Result<UmtsAuthResult> result) {
  if (!result) return pending.fail(result.error());
  const UmtsAuthResult& auth = *result;
  std::vector<SecretEntry> entries;
  if (auth.auts) {
    // TS 33.102 6.3.5: on a synchronisation failure only AUTS goes back.
    entries.emplace_back("AUTS", std::span<const uint8_t>(*auth.auts));
  } else if (auth.res && auth.ck && auth.ik) {
    entries.emplace_back("RES", std::span<const uint8_t>(*auth.res));
    entries.emplace_back("CK", std::span<const uint8_t>(*auth.ck));
    entries.emplace_back("IK", std::span<const uint8_t>(*auth.ik));
  } else {
    return pending.fail(Error{Code::Internal, "The service returned neither RES/CK/IK nor AUTS", std::nullopt});
  }
  pending.succeed([&](sd_bus_message* reply) { return append_say_dict(reply, entries); }, /*secret=*/true);
  // `result` (SecureBytes) wipes our own copies when it goes out of scope here.
}

void reply_gsm(PendingCall& pending, Result<std::vector<GsmAuthResult>> result) {
  if (!result) return pending.fail(result.error());
  pending.succeed(
      [&](sd_bus_message* reply) {
        int r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "a{say}");
        if (r < 0) return r;
        for (const GsmAuthResult& triplet : *result) {
          const SecretEntry entries[] = {{"SRES", std::span<const uint8_t>(triplet.sres)},
                                         {"Kc", std::span<const uint8_t>(triplet.kc)}};
          r = append_say_dict(reply, entries);
          if (r < 0) return r;
        }
        return sd_bus_message_close_container(reply);
      },
      /*secret=*/true);
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

// ---- /org/mcimd/Tre1/Profile/<index> ----

// Object lookup for the profile fallback vtables: any well-formed profile path is ours; an
// index without a profile answers NotFound (rather than sd-bus's UnknownObject) so that clients
// get one error name for "no such profile" whether they call the Manager or the profile.
int find_profile_object(sd_bus*, const char* path, const char*, void* userdata, void** found, sd_bus_error* ret_error) {
  return guarded(ret_error, "profile lookup", [&]() -> int {
    auto index = parse_profile_path(path);
    if (!index) return 0;
    if (!state_of(userdata).service.find_profile(*index))
      return set_error(ret_error, Error{Code::NotFound, std::string("No profile at ") + path, std::nullopt});
    *found = userdata;
    return 1;
  });
}

int enumerate_profiles(sd_bus*, const char*, void* userdata, char*** nodes, sd_bus_error* ret_error) {
  return guarded(ret_error, "profile enumeration", [&]() -> int {
    auto profiles = state_of(userdata).service.list_profiles();
    // sd-bus frees the list with free(), so it is built with malloc()/strdup().
    auto** list = static_cast<char**>(std::calloc(profiles.size() + 1, sizeof(char*)));
    if (!list) return -ENOMEM;
    for (std::size_t i = 0; i < profiles.size(); ++i) {
      list[i] = strdup(profile_path(profiles[i].index).c_str());
      if (!list[i]) {
        for (std::size_t j = 0; j < i; ++j) std::free(list[j]);
        std::free(list);
        return -ENOMEM;
      }
    }
    *nodes = list;
    return 0;
  });
}

template <class Field>
int append_profile_field(const char* path, sd_bus_message* reply, void* userdata, sd_bus_error* ret_error,
                         std::string_view what, Field field) {
  return guarded(ret_error, what, [&]() -> int {
    auto profile = profile_at(state_of(userdata), path);
    if (!profile) return set_error(ret_error, profile.error());
    return sd_bus_message_append(reply, "s", field(*profile).c_str());
  });
}

int property_get_iccid(sd_bus*, const char* path, const char*, const char*, sd_bus_message* reply, void* userdata,
                       sd_bus_error* ret_error) {
  return append_profile_field(path, reply, userdata, ret_error, "Iccid", [](const ProfileInfo& p) { return p.iccid; });
}

int property_get_imsi(sd_bus*, const char* path, const char*, const char*, sd_bus_message* reply, void* userdata,
                      sd_bus_error* ret_error) {
  return append_profile_field(path, reply, userdata, ret_error, "Imsi", [](const ProfileInfo& p) { return p.imsi; });
}

int property_get_operator_id(sd_bus*, const char* path, const char*, const char*, sd_bus_message* reply, void* userdata,
                             sd_bus_error* ret_error) {
  return append_profile_field(path, reply, userdata, ret_error, "OperatorId",
                              [](const ProfileInfo& p) { return p.operator_id; });
}

int property_get_state(sd_bus*, const char* path, const char*, const char*, sd_bus_message* reply, void* userdata,
                       sd_bus_error* ret_error) {
  return append_profile_field(path, reply, userdata, ret_error, "State", [](const ProfileInfo& p) { return p.state; });
}

int property_get_class(sd_bus*, const char* path, const char*, const char*, sd_bus_message* reply, void* userdata,
                       sd_bus_error* ret_error) {
  return append_profile_field(path, reply, userdata, ret_error, "Class",
                              [](const ProfileInfo& p) { return p.profile_class; });
}

// UmtsAuthenticate and ImsAuthenticate take the same arguments and answer alike.
template <class Call>
int umts_like(sd_bus_message* m, void* userdata, sd_bus_error* ret_error, std::string_view what, Call call) {
  return guarded(ret_error, what, [&]() -> int {
    State& s = state_of(userdata);
    auto profile = profile_at(s, sd_bus_message_get_path(m));
    if (!profile) return set_error(ret_error, profile.error());
    auto rand = read_fixed_bytes(m, "RAND", kRandSize);
    if (!rand) return set_error(ret_error, rand.error());
    auto autn = read_fixed_bytes(m, "AUTN", kAutnSize);
    if (!autn) return set_error(ret_error, autn.error());
    return dispatch(m, std::string(what), [&](const Pending& pending) {
      call(s.service, profile->id, std::move(*rand), std::move(*autn), replying<UmtsAuthResult>(pending, reply_umts));
    });
  });
}

int method_umts_authenticate(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return umts_like(m, userdata, ret_error, "UmtsAuthenticate",
                   [](Service& s, const std::string& id, Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply) {
                     s.umts_authenticate(id, std::move(rand), std::move(autn), std::move(reply));
                   });
}

int method_ims_authenticate(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return umts_like(m, userdata, ret_error, "ImsAuthenticate",
                   [](Service& s, const std::string& id, Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply) {
                     s.ims_authenticate(id, std::move(rand), std::move(autn), std::move(reply));
                   });
}

Result<std::vector<Bytes>> read_gsm_rands(sd_bus_message* m) {
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "ay");
  if (r < 0) return fail(Code::InvalidArgument, "Cannot read the RAND list: " + errno_text(r));
  std::vector<Bytes> rands;
  for (;;) {
    const void* data = nullptr;
    size_t size = 0;
    r = sd_bus_message_read_array(m, 'y', &data, &size);
    if (r < 0) return fail(Code::InvalidArgument, "Cannot read the RAND list: " + errno_text(r));
    if (r == 0) break;
    if (rands.size() == kMaxGsmRands)
      return fail(Code::InvalidArgument, "At most " + std::to_string(kMaxGsmRands) + " RANDs are accepted");
    if (size != kRandSize)
      return fail(Code::InvalidArgument, "RAND " + std::to_string(rands.size()) + " must be " +
                                             std::to_string(kRandSize) + " bytes, got " + std::to_string(size));
    rands.push_back(to_bytes(data, size));
  }
  r = sd_bus_message_exit_container(m);
  if (r < 0) return fail(Code::InvalidArgument, "Cannot read the RAND list: " + errno_text(r));
  if (rands.empty()) return fail(Code::InvalidArgument, "At least one RAND is needed");
  return rands;
}

int method_gsm_authenticate(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "GsmAuthenticate", [&]() -> int {
    State& s = state_of(userdata);
    auto profile = profile_at(s, sd_bus_message_get_path(m));
    if (!profile) return set_error(ret_error, profile.error());
    auto rands = read_gsm_rands(m);
    if (!rands) return set_error(ret_error, rands.error());
    std::size_t count = rands->size();
    return dispatch(m, "GsmAuthenticate", [&](const Pending& pending) {
      auto answer = [count](PendingCall& call, Result<std::vector<GsmAuthResult>> result) {
        if (result && result->size() != count)
          return call.fail(Error{Code::Internal,
                                 "The service answered " + std::to_string(result->size()) + " triplets for " +
                                     std::to_string(count) + " RANDs",
                                 std::nullopt});
        reply_gsm(call, std::move(result));
      };
      s.service.gsm_authenticate(profile->id, std::move(*rands),
                                 replying<std::vector<GsmAuthResult>>(pending, std::move(answer)));
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

const sd_bus_vtable kProfileVtable[] = {
    SD_BUS_VTABLE_START(0),
    // A profile keeps its identity for the life of its object; only State changes.
    SD_BUS_PROPERTY("Iccid", "s", property_get_iccid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Imsi", "s", property_get_imsi, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("OperatorId", "s", property_get_operator_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Class", "s", property_get_class, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_VTABLE_END,
};

// oFono's org.ofono.USimApplication wire signatures.
const sd_bus_vtable kUsimVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS("UmtsAuthenticate", SD_BUS_ARGS("ay", rand, "ay", autn), SD_BUS_RESULT("a{say}", result),
                            method_umts_authenticate, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("GsmAuthenticate", SD_BUS_ARGS("aay", rands), SD_BUS_RESULT("aa{say}", results),
                            method_gsm_authenticate, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ImsAuthenticate", SD_BUS_ARGS("ay", rand, "ay", autn), SD_BUS_RESULT("a{say}", result),
                            method_ims_authenticate, SD_BUS_VTABLE_UNPRIVILEGED),
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
  MCIMD_CHECK(check(sd_bus_add_fallback_vtable(bus, &slot, kProfilePathPrefix, kProfileInterface, kProfileVtable,
                                               find_profile_object, userdata),
                    "register the Profile interface"));
  s.profile_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_fallback_vtable(bus, &slot, kProfilePathPrefix, kUsimInterface, kUsimVtable,
                                               find_profile_object, userdata),
                    "register the USimApplication interface"));
  s.usim_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_node_enumerator(bus, &slot, kProfilePathPrefix, enumerate_profiles, userdata),
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
