#include "agent/operator_api.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "agent/config.hpp"

namespace mcimd::agent {

namespace {

using nlohmann::json;

constexpr const char* kJson = "application/json";
constexpr const char* kJose = "application/jose";

tl::unexpected<Failure> malformed(std::string message) {
  return failed(Party::Operator, FailureKind::Malformed, Code::InvalidArgument, std::move(message));
}

bool is_base64url(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

}  // namespace

bool is_jws_compact(std::string_view text) {
  auto first = text.find('.');
  if (first == std::string_view::npos) return false;
  auto second = text.find('.', first + 1);
  if (second == std::string_view::npos || text.find('.', second + 1) != std::string_view::npos) return false;
  std::string_view header = text.substr(0, first), payload = text.substr(first + 1, second - first - 1),
                   signature = text.substr(second + 1);
  return !header.empty() && !signature.empty() && is_base64url(header) && is_base64url(payload) &&
         is_base64url(signature);
}

std::string package_id_of(std::string_view jws) {
  if (!is_jws_compact(jws)) return "";
  auto first = jws.find('.');
  auto second = jws.find('.', first + 1);
  auto payload = base64url_decode(jws.substr(first + 1, second - first - 1), "package payload");
  if (!payload) return "";
  json j = json::parse(payload->begin(), payload->end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return "";
  auto id = j.find("package_id");
  if (id == j.end() || !id->is_string() || !is_protocol_id(id->get<std::string>())) return "";
  return id->get<std::string>();
}

Outcome<HttpAnswer> OperatorApi::post_json(std::string_view path, std::string_view body,
                                           std::optional<std::string_view> answer_type) {
  const std::string target = url(path);
  auto answer = http_.post(target, body, kJson);
  if (!answer) return answer;
  if (!answer_type) {
    if (answer->status != 204)
      return malformed(target + " answered HTTP " + std::to_string(answer->status) + ", not 204 No Content");
    return answer;
  }
  if (!has_media_type(answer->content_type, *answer_type))
    return malformed(target + " answered " +
                     (answer->content_type.empty() ? "without a Content-Type"
                                                   : "'" + answer->content_type.substr(0, 100) + "'") +
                     ", not " + std::string(*answer_type));
  return answer;
}

Outcome<protocol::CredentialChallenge> OperatorApi::start_enrolment(const protocol::EnrolmentRequest& request) {
  auto answer = MCIMD_TRY(post_json("/v1/enrolments", protocol::to_json(request), kJson));
  auto challenge = protocol::credential_challenge_from_json(answer.body);
  if (!challenge) return malformed(url("/v1/enrolments") + " answered a malformed challenge: " + challenge.error().message);
  return *challenge;
}

Outcome<void> OperatorApi::finish_enrolment(const std::string& device, const SecureBytes& secret) {
  std::string encoded = to_hex(secret);
  std::string body = json{{"device", device}, {"secret", encoded}}.dump();
  wipe(encoded.data(), encoded.size());
  auto answer = post_json("/v1/enrolments/activate", body, std::nullopt);
  wipe(body.data(), body.size());
  if (!answer) return tl::unexpected(answer.error());
  return {};
}

Outcome<protocol::ProvisioningSession> OperatorApi::open_session(const protocol::ProvisioningSessionRequest& request) {
  auto answer = MCIMD_TRY(post_json("/v1/sessions", protocol::to_json(request), kJson));
  auto session = protocol::session_from_json(answer.body);
  if (!session) return malformed(url("/v1/sessions") + " answered a malformed session: " + session.error().message);
  if (session->nonce.size() != protocol::kProvisioningNonceSize)
    return malformed(url("/v1/sessions") + " answered a nonce of " + std::to_string(session->nonce.size()) + " bytes");
  return *session;
}

Outcome<std::string> OperatorApi::fetch_package(const std::string& package_request) {
  auto answer = MCIMD_TRY(post_json("/v1/packages", package_request, kJose));
  std::string package = std::move(answer.body);
  // A final newline is not part of the compact serialisation.
  while (!package.empty() && (package.back() == '\n' || package.back() == '\r')) package.pop_back();
  if (package.size() > kMaxPackageSize)
    return malformed(url("/v1/packages") + " answered a package of " + std::to_string(package.size()) +
                     " bytes; mcimd takes at most " + std::to_string(kMaxPackageSize));
  if (!is_jws_compact(package)) return malformed(url("/v1/packages") + " answered something that is not a JWS");
  return package;
}

Outcome<void> OperatorApi::send_receipt(const std::string& receipt) {
  auto answer = post_json("/v1/receipts", receipt, std::nullopt);
  if (!answer) return tl::unexpected(answer.error());
  return {};
}

}  // namespace mcimd::agent
