#include "agent/failure.hpp"

namespace mcimd::agent {

namespace {

std::string_view whose(const Failure& f) {
  switch (f.kind) {
    case FailureKind::Refused:
      return f.party == Party::Mcimd ? "refused by mcimd" : "refused by the operator";
    case FailureKind::Transient:
      return f.party == Party::Mcimd ? "mcimd unavailable" : "operator unreachable";
    case FailureKind::Untrusted:
      return "untrusted server";
    case FailureKind::Malformed:
      return f.party == Party::Mcimd ? "malformed answer from mcimd" : "malformed answer from the operator";
    case FailureKind::Local:
      return "";
  }
  return "";
}

}  // namespace

std::string Failure::describe() const {
  std::string out = error.describe();
  if (auto w = whose(*this); !w.empty()) {
    out += " (";
    out += w;
    out += ")";
  }
  return out;
}

int exit_code_for(const Failure& f) {
  switch (f.kind) {
    case FailureKind::Local:
      return f.error.code == Code::ConfigError ? kExitUsage : kExitFailure;
    case FailureKind::Refused:
      return f.party == Party::Mcimd ? kExitRefusedByMcimd : kExitRefusedByOperator;
    case FailureKind::Transient:
      return f.party == Party::Mcimd ? kExitMcimdGaveUp : kExitNetworkGaveUp;
    case FailureKind::Untrusted:
      return kExitUntrustedServer;
    case FailureKind::Malformed:
      return kExitFailure;
  }
  return kExitFailure;
}

}  // namespace mcimd::agent
