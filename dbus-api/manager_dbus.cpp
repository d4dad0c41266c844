#include "dbus-api/manager_dbus.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.hpp"
#include "dbus-api/bus_reply.hpp"
#include "dbus-api/names.hpp"
#include "dbus-api/profile_dbus.hpp"

namespace mcimd::api {

namespace {

Service& service_of(void* userdata) { return *static_cast<Service*>(userdata); }

// The profile an argument names: `path` must be a profile object path of an installed profile.
Result<ProfileInfo> profile_at(const Service& service, std::string_view path) {
  auto index = parse_profile_path(path);
  if (!index)
    return fail(Code::InvalidArgument,
                "'" + std::string(path) + "' is not a profile object path (" + kProfilePathPrefix + "/<index>)");
  auto info = service.find_profile(*index);
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

int method_list_profiles(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "ListProfiles", [&]() -> int {
    Service& service = service_of(userdata);
    auto profiles = service.list_profiles();
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
    Service& service = service_of(userdata);
    int fd = -1;  // owned by the message
    int r = sd_bus_message_read(m, "h", &fd);
    if (r < 0) return r;
    auto document = read_profile_document(fd);
    if (!document) return set_error(ret_error, document.error());
    return dispatch(m, "InstallProfile", [&](const Pending& pending) {
      service.install_profile(std::move(*document),
                              answering<ProfileInfo>(pending, [](sd_bus_message* reply, const ProfileInfo& info) {
                                return sd_bus_message_append(reply, "o", profile_path(info.index).c_str());
                              }));
    });
  });
}

// EnableProfile, DisableProfile and DeleteProfile share their shape: one profile path in,
// nothing out.
using ProfileCommand = void (ProfileManagement::*)(const std::string& id, Reply<void> reply);

int profile_command(sd_bus_message* m, void* userdata, sd_bus_error* ret_error, std::string_view what,
                    ProfileCommand command) {
  return guarded(ret_error, what, [&]() -> int {
    Service& service = service_of(userdata);
    const char* path = nullptr;
    int r = sd_bus_message_read(m, "o", &path);
    if (r < 0) return r;
    auto profile = profile_at(service, path);
    if (!profile) return set_error(ret_error, profile.error());
    return dispatch(m, std::string(what), [&](const Pending& pending) {
      (service.*command)(profile->id, replying<void>(pending, reply_status));
    });
  });
}

int method_enable_profile(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return profile_command(m, userdata, ret_error, "EnableProfile", &Service::enable_profile);
}

int method_disable_profile(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return profile_command(m, userdata, ret_error, "DisableProfile", &Service::disable_profile);
}

int method_delete_profile(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return profile_command(m, userdata, ret_error, "DeleteProfile", &Service::delete_profile);
}

int property_get_active_profile(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                                sd_bus_error* ret_error) {
  return guarded(ret_error, "ActiveProfile", [&]() -> int {
    auto active = active_profile_info(service_of(userdata));
    // No active profile: the conventional null object path.
    std::string path = active ? profile_path(active->index) : "/";
    return sd_bus_message_append(reply, "o", path.c_str());
  });
}

int property_get_platform_state(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                                sd_bus_error* ret_error) {
  return guarded(ret_error, "PlatformState", [&]() -> int {
    return sd_bus_message_append(reply, "s", std::string(to_string(service_of(userdata).platform_state())).c_str());
  });
}

// A signed PCR policy is a small JSON document (protocol/pcr_policy.hpp): one bank of at most
// 24 digests, a name, a signature.
constexpr std::size_t kMaxPcrPolicySize = 64 * 1024;

int method_add_pcr_policy(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "AddPcrPolicy", [&]() -> int {
    Service& service = service_of(userdata);
    const char* text = nullptr;
    int r = sd_bus_message_read(m, "s", &text);
    if (r < 0) return r;
    const std::string_view document = text;
    if (document.empty() || document.size() > kMaxPcrPolicySize)
      return set_error(ret_error, Error{Code::InvalidArgument,
                                        "policy must be 1 to " + std::to_string(kMaxPcrPolicySize) + " bytes, got " +
                                            std::to_string(document.size())});
    return dispatch(m, "AddPcrPolicy", [&](const Pending& pending) {
      service.add_pcr_policy(std::string(document),
                             answering<std::string>(pending, [](sd_bus_message* reply, const std::string& id) {
                               return sd_bus_message_append(reply, "s", id.c_str());
                             }));
    });
  });
}

int method_list_pcr_policies(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "ListPcrPolicies", [&]() -> int {
    Service& service = service_of(userdata);
    return dispatch(m, "ListPcrPolicies", [&](const Pending& pending) {
      service.list_pcr_policies(answering<std::vector<PcrPolicyInfo>>(
          pending, [](sd_bus_message* reply, const std::vector<PcrPolicyInfo>& policies) {
            int r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "(ssb)");
            for (const auto& p : policies) {
              if (r < 0) return r;
              r = sd_bus_message_append(reply, "(ssb)", p.id.c_str(), p.pcrs.c_str(), p.active ? 1 : 0);
            }
            if (r < 0) return r;
            return sd_bus_message_close_container(reply);
          }));
    });
  });
}

// Packages are signed JSON texts carrying two import blobs each: a few KiB. The limit keeps a
// hostile caller from parking megabytes in the TPM worker's queue.
constexpr std::size_t kMaxPackageSize = 256 * 1024;
constexpr std::size_t kMaxSessionIdSize = 64;

int method_request_package(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "RequestPackage", [&]() -> int {
    Service& service = service_of(userdata);
    const char* session = nullptr;
    int r = sd_bus_message_read(m, "s", &session);
    if (r < 0) return r;
    // protocol::kProvisioningNonceSize; dbus-api does not depend on protocol/.
    auto nonce = read_fixed_bytes(m, "operator_nonce", 32);
    if (!nonce) return set_error(ret_error, nonce.error());
    const std::string_view id = session;
    if (id.empty() || id.size() > kMaxSessionIdSize)
      return set_error(ret_error, Error{Code::InvalidArgument, "session must be 1 to " +
                                                                   std::to_string(kMaxSessionIdSize) + " characters"});
    return dispatch(m, "RequestPackage", [&](const Pending& pending) {
      service.request_package(std::string(id), std::move(*nonce),
                              answering<std::string>(pending, [](sd_bus_message* reply, const std::string& request) {
                                return sd_bus_message_append(reply, "s", request.c_str());
                              }));
    });
  });
}

// The (o profile, s receipt) answer of an install.
Reply<PackageInstall> answer_installed(const Pending& pending) {
  return answering<PackageInstall>(pending, [](sd_bus_message* reply, const PackageInstall& done) {
    return sd_bus_message_append(reply, "os", profile_path(done.profile.index).c_str(), done.receipt.c_str());
  });
}

int method_install_package(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "InstallPackage", [&]() -> int {
    Service& service = service_of(userdata);
    const char* text = nullptr;
    int r = sd_bus_message_read(m, "s", &text);
    if (r < 0) return r;
    const std::string_view package = text;
    if (package.empty() || package.size() > kMaxPackageSize)
      return set_error(ret_error, Error{Code::InvalidArgument, "package must be 1 to " +
                                                                   std::to_string(kMaxPackageSize) + " bytes, got " +
                                                                   std::to_string(package.size())});
    return dispatch(m, "InstallPackage", [&](const Pending& pending) {
      service.install_package(std::string(package), answer_installed(pending));
    });
  });
}

// Change of subscription (TR 33.812 §5.1.3.5.5): the old operator's release and the new
// operator's package, both signed JSON texts the daemon verifies.
int method_change_subscription(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "ChangeSubscription", [&]() -> int {
    Service& service = service_of(userdata);
    const char* release_text = nullptr;
    const char* package_text = nullptr;
    int r = sd_bus_message_read(m, "ss", &release_text, &package_text);
    if (r < 0) return r;
    const std::string_view release = release_text, package = package_text;
    // protocol::kMaxLifecycleJwsSize: a release is a small signed document with its chain.
    constexpr std::size_t kMaxReleaseSize = 64 * 1024;
    if (release.empty() || release.size() > kMaxReleaseSize)
      return set_error(ret_error, Error{Code::InvalidArgument, "release must be 1 to " +
                                                                   std::to_string(kMaxReleaseSize) + " bytes"});
    if (package.empty() || package.size() > kMaxPackageSize)
      return set_error(ret_error, Error{Code::InvalidArgument, "package must be 1 to " +
                                                                   std::to_string(kMaxPackageSize) + " bytes"});
    return dispatch(m, "ChangeSubscription", [&](const Pending& pending) {
      service.change_subscription(std::string(release), std::string(package), answer_installed(pending));
    });
  });
}

int method_confirm_profile(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "ConfirmProfile", [&]() -> int {
    Service& service = service_of(userdata);
    const char* path = nullptr;
    int r = sd_bus_message_read(m, "o", &path);
    if (r < 0) return r;
    auto profile = profile_at(service, path);
    if (!profile) return set_error(ret_error, profile.error());
    return dispatch(m, "ConfirmProfile", [&](const Pending& pending) {
      service.confirm_profile(profile->id, answering<std::string>(pending, [](sd_bus_message* reply, const std::string& receipt) {
                                return sd_bus_message_append(reply, "s", receipt.c_str());
                              }));
    });
  });
}

int method_deletion_receipts(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "DeletionReceipts", [&]() -> int {
    Service& service = service_of(userdata);
    return dispatch(m, "DeletionReceipts", [&](const Pending& pending) {
      service.deletion_receipts(answering<std::vector<std::string>>(
          pending, [](sd_bus_message* reply, const std::vector<std::string>& receipts) {
            int r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "s");
            for (const auto& text : receipts)
              if (r >= 0) r = sd_bus_message_append(reply, "s", text.c_str());
            return r < 0 ? r : sd_bus_message_close_container(reply);
          }));
    });
  });
}

int method_apply_command(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "ApplyCommand", [&]() -> int {
    Service& service = service_of(userdata);
    const char* text = nullptr;
    int r = sd_bus_message_read(m, "s", &text);
    if (r < 0) return r;
    const std::string_view command = text;
    // protocol::kMaxLifecycleJwsSize: a small signed document with its chain.
    constexpr std::size_t kMaxCommandSize = 64 * 1024;
    if (command.empty() || command.size() > kMaxCommandSize)
      return set_error(ret_error, Error{Code::InvalidArgument, "command must be 1 to " +
                                                                   std::to_string(kMaxCommandSize) + " bytes"});
    return dispatch(m, "ApplyCommand", [&](const Pending& pending) {
      service.apply_command(std::string(command),
                            answering<std::string>(pending, [](sd_bus_message* reply, const std::string& result) {
                              return sd_bus_message_append(reply, "s", result.c_str());
                            }));
    });
  });
}

int method_request_fallback(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "RequestFallback", [&]() -> int {
    Service& service = service_of(userdata);
    return dispatch(m, "RequestFallback", [&](const Pending& pending) {
      service.request_fallback(replying<void>(pending, reply_status));
    });
  });
}

constexpr MemberAccess kManagerMembers[] = {
    {"ListProfiles", Access::Read},     {"InstallProfile", Access::Manage}, {"EnableProfile", Access::Manage},
    {"DisableProfile", Access::Manage}, {"DeleteProfile", Access::Manage},  {"AddPcrPolicy", Access::Manage},
    {"ListPcrPolicies", Access::Read},  {"RequestPackage", Access::Provision}, {"InstallPackage", Access::Provision},
    {"ChangeSubscription", Access::Provision}, {"ConfirmProfile", Access::Manage},
    {"DeletionReceipts", Access::Provision}, {"ApplyCommand", Access::Provision},
    {"RequestFallback", Access::Authenticate},
};

}  // namespace

// Kept in sync with org.mcimd.Tre1.xml; a test compares them.
const sd_bus_vtable manager_vtable[] = {
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
    SD_BUS_METHOD_WITH_ARGS("AddPcrPolicy", SD_BUS_ARGS("s", policy), SD_BUS_RESULT("s", id), method_add_pcr_policy,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ListPcrPolicies", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ssb)", policies),
                            method_list_pcr_policies, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("RequestPackage", SD_BUS_ARGS("s", session, "ay", operator_nonce),
                            SD_BUS_RESULT("s", request), method_request_package, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("InstallPackage", SD_BUS_ARGS("s", package), SD_BUS_RESULT("o", profile, "s", receipt),
                            method_install_package, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ChangeSubscription", SD_BUS_ARGS("s", release, "s", package),
                            SD_BUS_RESULT("o", profile, "s", receipt), method_change_subscription,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ConfirmProfile", SD_BUS_ARGS("o", profile), SD_BUS_RESULT("s", deletion_receipt),
                            method_confirm_profile, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("DeletionReceipts", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", receipts),
                            method_deletion_receipts, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ApplyCommand", SD_BUS_ARGS("s", command), SD_BUS_RESULT("s", result),
                            method_apply_command, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("RequestFallback", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_request_fallback,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_PROPERTY("ActiveProfile", "o", property_get_active_profile, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("PlatformState", "s", property_get_platform_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_VTABLE_END,
};

// Listing is reading; everything that changes the profiles is managing.
constinit const InterfaceAccess manager_access{kManagerInterface, kManagerMembers};

}  // namespace mcimd::api
