#pragma once
// The reference operator's provisioning service (docs/protocol.md, "Remote provisioning"):
// enrolment, provisioning sessions, MCIM packages and install receipts over HTTPS. The answers
// are made by OperatorService, which knows nothing of HTTP; serve() puts it behind cpp-httplib's
// TLS server with client authentication.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "attestation/policy.hpp"
#include "attestation/verifier_ek.hpp"
#include "common/error.hpp"
#include "operator/package_builder.hpp"
#include "operator/registry.hpp"

namespace mcimd::op {

struct OperatorServiceOptions {
  std::string operator_id;  // as packages name it; also the IMSI's MCC+MNC for new subscriptions
  PolicySigner package_signer;  // id-kp-documentSigning certificate chaining to what devices trust
  std::optional<attestation::ReferencePolicy> policy;  // the platform states packages are made for
  std::optional<attestation::CaBundle> ek_cas;         // enrolment: EK certificates must chain here
  bool allow_uncertified_ek = false;
  // The AuC's side of each subscription: K, OPc and IMSI per ICCID as <iccid>.json (0600), where
  // the network's authentication centre reads them. New subscriptions are written here before
  // any package carries them; a linked subscription must have its record here.
  std::filesystem::path auc_dir;
  std::string iccid_prefix = "8949";  // new ICCIDs: the prefix and random digits, 19 in all
  std::chrono::seconds session_lifetime = std::chrono::minutes{10};
  std::chrono::seconds package_lifetime = std::chrono::hours{24};
};

// One HTTP answer.
struct Answer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// The HTTP status for a refusal with this code (400, 403, 404, 409, 503, 500).
int http_status(Code code);
// A refusal's answer: that status and an mcimd-error-1 body.
Answer error_answer(const Error& error);

class OperatorService {
 public:
  OperatorService(Registry registry, OperatorServiceOptions options);

  // Answers a POST of `body` to `path` (/v1/enrolments, /v1/enrolments/activate, /v1/sessions,
  // /v1/packages, /v1/receipts); 404 for any other path. Every refusal is an mcimd-error-1 body
  // whose code names the reason (WrongDevice, Replayed, Expired, …); the registry changes only
  // when the request is accepted.
  Answer handle(std::string_view path, std::string_view body, protocol::Timestamp now);

  const Registry& registry() const { return registry_; }

 private:
  Result<Answer> route(std::string_view path, std::string_view body, protocol::Timestamp now);
  Result<Answer> enrol(std::string_view body);
  Result<Answer> activate(std::string_view body);
  Result<Answer> open_session(std::string_view body, protocol::Timestamp now);
  Result<Answer> package(std::string_view body, protocol::Timestamp now);
  Result<Answer> receipt(std::string_view body, protocol::Timestamp now);

  Registry registry_;
  OperatorServiceOptions options_;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  int port = 8443;  // 0: any free port (ready() says which)
  std::filesystem::path certificate;  // PEM chain the server presents, leaf first
  std::filesystem::path key;          // its PEM private key
  std::filesystem::path client_ca;    // clients (provisioning agents) must present a certificate chaining here
  std::chrono::seconds read_timeout = std::chrono::seconds{30};
};

// Serves `service` over HTTPS until `stop` becomes true (checked several times a second).
// ready(port) is called once the socket listens. ConfigError when the certificate, key or CA do
// not load; IoError when the address cannot be bound.
[[nodiscard]] Status serve(OperatorService& service, const ServerOptions& options, const std::atomic<bool>& stop,
                           const std::function<void(int port)>& ready);

}  // namespace mcimd::op
