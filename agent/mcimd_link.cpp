#include "agent/mcimd_link.hpp"

#include "dbus-api/names.hpp"

namespace mcimd::agent {

namespace {

// D-Bus errors that mean mcimd (or the bus) is not there right now: it may be starting or
// restarting, so the call is worth another attempt.
bool is_unreachable(std::string_view name) {
  for (const char* n : {api::kNoServerError, "org.freedesktop.DBus.Error.ServiceUnknown",
                        "org.freedesktop.DBus.Error.NameHasNoOwner", "org.freedesktop.DBus.Error.NoReply",
                        "org.freedesktop.DBus.Error.Timeout", "org.freedesktop.DBus.Error.Disconnected",
                        "System.Error.ENOTCONN", "System.Error.ECONNRESET", "System.Error.ECONNREFUSED",
                        "System.Error.ETIMEDOUT"})
    if (name == n) return true;
  return false;
}

}  // namespace

Failure mcimd_failure(std::string_view call, const api::CallError& e) {
  const std::string what = std::string(call) + ": " + e.message;
  if (auto code = api::code_from_error_name(e.name))
    return Failure{Party::Mcimd, *code == Code::Busy ? FailureKind::Transient : FailureKind::Refused,
                   Error{*code, what}};
  if (is_unreachable(e.name))
    return Failure{Party::Mcimd, FailureKind::Transient, Error{Code::IoError, what + " (" + e.name + ")"}};
  if (e.name == "org.freedesktop.DBus.Error.AccessDenied")
    return Failure{Party::Mcimd, FailureKind::Refused, Error{Code::NotAuthorized, what + " (the bus policy)"}};
  if (e.name == "org.freedesktop.DBus.Error.InvalidSignature")
    return Failure{Party::Mcimd, FailureKind::Malformed, Error{Code::InvalidArgument, what}};
  return Failure{Party::Mcimd, FailureKind::Refused, Error{Code::Internal, what + " (" + e.name + ")"}};
}

template <class T, class Call>
Outcome<T> BusMcimd::call(std::string_view what, Call&& call) {
  if (!client_) {
    auto connected = api::Client::connect(address_);
    if (!connected) return tl::unexpected(mcimd_failure("connecting to mcimd", connected.error()));
    client_.emplace(std::move(*connected));
  }
  auto r = call(*client_);
  if (r) return T(std::move(*r));
  Failure f = mcimd_failure(what, r.error());
  // A lost connection is made again on the next call.
  if (f.kind == FailureKind::Transient && f.error.code == Code::IoError) client_.reset();
  return tl::unexpected(std::move(f));
}

Outcome<api::EndorsementData> BusMcimd::get_endorsement(const std::string& ek_type) {
  return call<api::EndorsementData>("GetEndorsement", [&](api::Client& c) { return c.get_endorsement(ek_type); });
}

Outcome<SecureBytes> BusMcimd::activate_credential(const std::string& ek_type, const Bytes& credential_blob,
                                                   const Bytes& encrypted_secret) {
  return call<SecureBytes>("ActivateCredential", [&](api::Client& c) {
    return c.activate_credential(ek_type, credential_blob, encrypted_secret);
  });
}

Outcome<std::string> BusMcimd::request_package(const std::string& session, const Bytes& operator_nonce) {
  return call<std::string>("RequestPackage",
                           [&](api::Client& c) { return c.request_package(session, operator_nonce); });
}

Outcome<InstalledPackage> BusMcimd::install_package(const std::string& package) {
  return call<InstalledPackage>("InstallPackage", [&](api::Client& c) -> api::CallResult<InstalledPackage> {
    auto installed = c.install_package(package);
    if (!installed) return tl::unexpected(installed.error());
    return InstalledPackage{std::move(installed->profile), std::move(installed->receipt)};
  });
}

}  // namespace mcimd::agent
