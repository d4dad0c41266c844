#include "common/error.hpp"

#include <cstring>

namespace mcimd {

std::string_view code_name(Code code) {
  switch (code) {
    case Code::InvalidArgument: return "InvalidArgument";
    case Code::NotAuthorized: return "NotAuthorized";
    case Code::NotFound: return "NotFound";
    case Code::AlreadyExists: return "AlreadyExists";
    case Code::InvalidState: return "InvalidState";
    case Code::MacFailure: return "MacFailure";
    case Code::SyncFailure: return "SyncFailure";
    case Code::AmfFailure: return "AmfFailure";
    case Code::PlatformStateChanged: return "PlatformStateChanged";
    case Code::TpmFailure: return "TpmFailure";
    case Code::TpmMismatch: return "TpmMismatch";
    case Code::RollbackDetected: return "RollbackDetected";
    case Code::StoreCorrupt: return "StoreCorrupt";
    case Code::StoreTampered: return "StoreTampered";
    case Code::ConfigError: return "ConfigError";
    case Code::IoError: return "IoError";
    case Code::Busy: return "Busy";
    case Code::Unsupported: return "Unsupported";
    case Code::SignatureInvalid: return "SignatureInvalid";
    case Code::UntrustedSigner: return "UntrustedSigner";
    case Code::Expired: return "Expired";
    case Code::Replayed: return "Replayed";
    case Code::WrongDevice: return "WrongDevice";
    case Code::UntrustedServer: return "UntrustedServer";
    case Code::Internal: return "Internal";
  }
  return "Internal";
}

std::string Error::describe() const {
  std::string out(code_name(code));
  out += ": ";
  out += message;
  return out;
}

tl::unexpected<Error> fail_errno(std::string_view what, int err) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return tl::unexpected<Error>(Error{Code::IoError, std::move(msg), std::nullopt});
}

}  // namespace mcimd
