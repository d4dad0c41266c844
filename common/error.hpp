#pragma once
// One error type for the whole project: a code that maps to a fixed D-Bus error name,
// a human message, and the raw TSS2 return code when the TPM said no.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

namespace mcimd {

enum class Code {
  InvalidArgument,       // malformed input from a caller or a file
  NotAuthorized,         // caller lacks the role
  NotFound,              // no such profile / object / file
  AlreadyExists,         // profile with the same ICCID or id already installed
  InvalidState,          // e.g. authenticating with a disabled profile
  MacFailure,            // AUTN MAC did not verify (TS 33.102 6.3.3)
  SyncFailure,           // SQN out of range: caller gets AUTS
  AmfFailure,            // AMF separation bit not set where required
  PlatformStateChanged,  // PCR policy no longer satisfied
  TpmFailure,            // any other TPM error
  TpmMismatch,           // SRK differs from the pinned one: another TPM, or a cleared one
  RollbackDetected,      // store older than the TPM NV counter says
  StoreCorrupt,          // files unreadable or inconsistent
  StoreTampered,         // store contents fail their MAC or hash: changed behind the daemon's back
  ConfigError,           // bad configuration file
  IoError,               // errno-level failure
  Busy,                  // queue full
  Unsupported,           // TPM or platform lacks a capability, or an algorithm mcimd does not implement
  SignatureInvalid,      // a signed document does not verify: changed after it was signed
  UntrustedSigner,       // the signer does not chain to a configured anchor, or its certificate is not for this purpose
  Expired,               // a document or session past its expiry
  Replayed,              // a nonce not outstanding, or a counter not above the last accepted
  WrongDevice,           // a document made for another device
  UntrustedServer,       // the operator's TLS certificate does not verify
  Internal,              // a bug
};

std::string_view code_name(Code code);

struct Error {
  Error() = default;
  Error(Code c, std::string m, std::optional<uint32_t> tss2_rc = std::nullopt)
      : code(c), message(std::move(m)), tss2_rc_(tss2_rc) {}

  Code code = Code::Internal;
  std::string message;

  // The TSS2 return code when the TPM stack said no. An error that carries none (a lost
  // connection, a check of ours) answers 0, TSS2_RC_SUCCESS, which no classification mistakes
  // for a particular failure: callers never need to test for presence before they look.
  uint32_t tss2_rc() const { return tss2_rc_.value_or(0); }
  bool has_tss2_rc() const { return tss2_rc_.has_value(); }

  // "Name: message" for logs and CLI output.
  std::string describe() const;

 private:
  std::optional<uint32_t> tss2_rc_;
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = Result<void>;

inline tl::unexpected<Error> fail(Code code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message), std::nullopt});
}

// errno → IoError with "what: strerror".
tl::unexpected<Error> fail_errno(std::string_view what, int err);

}  // namespace mcimd

// Propagates the error of a Result expression, yielding its value otherwise (GNU statement expression).
#define MCIMD_TRY(expr)                                                 \
  ({                                                                    \
    auto&& mcimd_try_result_ = (expr);                                  \
    if (!mcimd_try_result_) return tl::unexpected(std::move(mcimd_try_result_).error()); \
    std::move(mcimd_try_result_).value();                               \
  })
#define MCIMD_CHECK(expr)                                               \
  do {                                                                  \
    auto&& mcimd_check_result_ = (expr);                                \
    if (!mcimd_check_result_) return tl::unexpected(std::move(mcimd_check_result_).error()); \
  } while (0)
