#pragma once
// The operator's provisioning endpoints (docs/protocol.md, "Remote provisioning"), one call
// each, over HttpClient. Requests go out as JSON; mcimd's own documents (the package request, the
// install receipt) go out byte for byte as mcimd made them, since the operator checks signatures
// and quotes over them. Every answer is checked for its media type and parsed strictly.
#include <optional>
#include <string>
#include <string_view>

#include "agent/failure.hpp"
#include "agent/http.hpp"
#include "common/bytes.hpp"
#include "protocol/evidence.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::agent {

// Largest package the agent passes on: mcimd's InstallPackage limit.
inline constexpr std::size_t kMaxPackageSize = protocol::kMaxPackageSize;

class OperatorApi {
 public:
  // base_url as normalise_operator_url() returns it.
  OperatorApi(HttpClient& http, std::string base_url) : http_(http), base_(std::move(base_url)) {}

  const std::string& base_url() const { return base_; }

  // POST /v1/enrolments: the credential challenge for this EK and AK.
  [[nodiscard]] Outcome<protocol::CredentialChallenge> start_enrolment(const protocol::EnrolmentRequest& request);
  // POST /v1/enrolments/activate with {"device": HEX, "secret": HEX}, the secret the TPM released
  // as `mcimctl attest activate --json` prints it; the operator answers 204 once it matched. The
  // request body is wiped once sent.
  [[nodiscard]] Outcome<void> finish_enrolment(const std::string& device, const SecureBytes& secret);
  // POST /v1/sessions: the operator's session and nonce (kProvisioningNonceSize bytes).
  [[nodiscard]] Outcome<protocol::ProvisioningSession> open_session(const protocol::ProvisioningSessionRequest& request);
  // POST /v1/packages with mcimd's package request unchanged: the package, a JWS compact text
  // answered as application/jose.
  [[nodiscard]] Outcome<std::string> fetch_package(const std::string& package_request);
  // POST /v1/receipts with mcimd's install receipt unchanged; the operator answers 204 once the
  // receipt verified and was recorded.
  [[nodiscard]] Outcome<void> send_receipt(const std::string& receipt);

 private:
  // POSTs a JSON body; a 2xx answer must be `answer_type` (nullopt: 204 No Content).
  Outcome<HttpAnswer> post_json(std::string_view path, std::string_view body,
                                std::optional<std::string_view> answer_type);
  std::string url(std::string_view path) const { return base_ + std::string(path); }

  HttpClient& http_;
  std::string base_;
};

// True for a JWS compact serialisation (RFC 7515 §7.1): three base64url parts joined by dots,
// the header and signature not empty.
bool is_jws_compact(std::string_view text);
// The package_id a package's payload names, for progress lines and the state file; "" when the
// payload does not parse or the id is not [A-Za-z0-9._-]{1,64}. mcimd checks the package, not this.
std::string package_id_of(std::string_view jws);

}  // namespace mcimd::agent
