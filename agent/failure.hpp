#pragma once
// What went wrong in a provisioning run, and whose answer it was. The agent stands between two
// parties (the operator over HTTPS, mcimd over D-Bus) and must tell them apart: a refusal is
// final, a transient failure is retried, an untrusted server is never talked to again in the run.
#include <string>
#include <tl/expected.hpp>

#include "common/error.hpp"

namespace mcimd::agent {

enum class Party {
  Agent,     // the agent itself: its configuration, its state directory, a bug
  Operator,  // the operator's server, or the network on the way to it
  Mcimd,     // mcimd, or the bus on the way to it
};

enum class FailureKind {
  Local,      // a problem of the agent's own (configuration, state directory)
  Refused,    // the party answered no, by name: retrying would get the same answer
  Transient,  // worth another attempt: no connection, a timeout, HTTP 5xx/429, mcimd Busy or not running
  Untrusted,  // the server's TLS certificate does not verify against the configured CA bundle
  Malformed,  // an answer that breaks the protocol (wrong type, too large, unparsable)
};

struct Failure {
  Party party = Party::Agent;
  FailureKind kind = FailureKind::Local;
  Error error;

  bool retryable() const { return kind == FailureKind::Transient; }
  // "Replayed: session s-1 is used (refused by the operator)".
  std::string describe() const;
};

template <class T>
using Outcome = tl::expected<T, Failure>;

inline tl::unexpected<Failure> failed(Party party, FailureKind kind, Code code, std::string message) {
  return tl::unexpected(Failure{party, kind, Error{code, std::move(message)}});
}
// A local failure (configuration, state directory) carried as it came.
inline tl::unexpected<Failure> local_failure(Error error) {
  return tl::unexpected(Failure{Party::Agent, FailureKind::Local, std::move(error)});
}

// mcimd-agent's exit status; documented in --help and docs/operations.md.
enum ExitCode : int {
  kExitOk = 0,                // provisioned, already provisioned, or nothing to do at boot
  kExitFailure = 1,           // anything else: the state directory, a malformed answer, a bug
  kExitUsage = 2,             // bad command line or configuration
  kExitRefusedByMcimd = 3,    // mcimd refused (SignatureInvalid, Replayed, NotAuthorized, ...)
  kExitRefusedByOperator = 4, // the operator refused (an mcimd-error-1 answer, or the TLS handshake)
  kExitUntrustedServer = 5,   // the operator's certificate does not verify
  kExitNetworkGaveUp = 6,     // the operator stayed unreachable or busy through every retry
  kExitMcimdGaveUp = 7,       // mcimd stayed unreachable or busy through every retry
};

int exit_code_for(const Failure& failure);

}  // namespace mcimd::agent
