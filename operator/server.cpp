#include "operator/server.hpp"

#include <openssl/rand.h>

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/file.hpp"
#include "common/log.hpp"
#include "operator/provisioning_steps.hpp"
#include "operator/enrolment.hpp"
#include "operator/validation.hpp"
#include "protocol/evidence.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::op {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxSmallBody = protocol::kMaxProvisioningMessageSize;

Answer json_answer(std::string body) { return Answer{200, "application/json", std::move(body)}; }
Answer no_content() { return Answer{204, "", ""}; }

// {"device":HEX,"secret":HEX}: the secret the device's TPM released.
struct Activation {
  std::string device;
  Bytes secret;
};
Result<Activation> activation_from_json(std::string_view body) {
  if (body.size() > kMaxSmallBody) return fail(Code::InvalidArgument, "activation: larger than 64 KiB");
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("device") || !j.contains("secret") || !j["device"].is_string() ||
      !j["secret"].is_string())
    return fail(Code::InvalidArgument, "activation: expected {\"device\": HEX, \"secret\": HEX}");
  Activation a;
  a.device = j["device"].get<std::string>();
  a.secret = MCIMD_TRY(from_hex(j["secret"].get<std::string>(), "activation: secret"));
  return a;
}

Result<Bytes> device_name(std::string_view device) {
  if (device.empty() || device.size() > 2 + 2 * 64) return fail(Code::InvalidArgument, "device: not an AK name");
  return from_hex(device, "device");
}

}  // namespace

int http_status(Code code) {
  switch (code) {
    case Code::InvalidArgument:
    case Code::SignatureInvalid:
    case Code::Unsupported:
      return 400;
    case Code::NotAuthorized:
    case Code::UntrustedSigner:
    case Code::WrongDevice:
      return 403;
    case Code::NotFound:
      return 404;
    case Code::AlreadyExists:
    case Code::InvalidState:
    case Code::Replayed:
    case Code::Expired:
      return 409;
    case Code::Busy:
      return 503;
    default:
      return 500;
  }
}

Answer error_answer(const Error& error) {
  protocol::ProtocolError e{std::string(code_name(error.code)), error.message};
  return Answer{http_status(error.code), "application/json", protocol::to_json(e)};
}

OperatorService::OperatorService(Registry registry, OperatorServiceOptions options)
    : registry_(std::move(registry)), options_(std::move(options)) {}

Answer OperatorService::handle(std::string_view path, std::string_view body, protocol::Timestamp now) {
  Result<Answer> answer = [&]() -> Result<Answer> {
    try {
      return route(path, body, now);
    } catch (const std::exception& e) {
      return fail(Code::Internal, std::string("unexpected failure: ") + e.what());
    }
  }();
  if (!answer) {
    log::info("Refused " + std::string(path) + ": " + std::string(code_name(answer.error().code)) + ": " +
              answer.error().message);
    return error_answer(answer.error());
  }
  return *std::move(answer);
}

Result<Answer> OperatorService::route(std::string_view path, std::string_view body, protocol::Timestamp now) {
  {
    if (path == "/v1/enrolments") return enrol(body);
    if (path == "/v1/enrolments/activate") return activate(body);
    if (path == "/v1/sessions") return open_session(body, now);
    if (path == "/v1/packages") return package(body, now);
    if (path == "/v1/receipts") return receipt(body, now);
    return fail(Code::NotFound, "no such endpoint: " + std::string(path));
  }
}

Result<Answer> OperatorService::enrol(std::string_view body) {
  auto request = MCIMD_TRY(protocol::enrolment_request_from_json(body));
  EnrolmentOptions eo;
  eo.ek_cas = options_.ek_cas;
  eo.allow_uncertified_ek = options_.allow_uncertified_ek;
  auto start = MCIMD_TRY(start_enrolment(registry_, request, eo));
  if (!start.ok) {
    std::string why;
    for (const auto& c : start.checks)
      if (!c.passed) why += (why.empty() ? "" : "; ") + c.name + ": " + c.reason;
    return fail(Code::NotAuthorized, "enrolment refused: " + why);
  }
  return json_answer(protocol::to_json(start.challenge));
}

Result<Answer> OperatorService::activate(std::string_view body) {
  auto a = MCIMD_TRY(activation_from_json(body));
  MCIMD_CHECK(finish_enrolment(registry_, a.secret, a.device));
  log::info("Enrolled device " + a.device);
  return no_content();
}

Result<Answer> OperatorService::open_session(std::string_view body, protocol::Timestamp now) {
  auto request = MCIMD_TRY(protocol::session_request_from_json(body));
  const Bytes ak_name = MCIMD_TRY(device_name(request.device));
  auto device = MCIMD_TRY(registry_.find(ak_name));
  if (!device || !device->enrolled)
    return fail(Code::NotAuthorized, "device " + request.device + " is not enrolled with this operator");
  if (request.subscription) {
    auto sub = MCIMD_TRY(registry_.find_subscription(*request.subscription));
    if (!sub) return fail(Code::NotFound, "no subscription " + *request.subscription);
    // The subscriber links the device to a subscription of theirs: one device at a time.
    MCIMD_CHECK(registry_.link_subscription(ak_name, *request.subscription, now));
  }
  auto nonce = MCIMD_TRY(random_bytes(kSessionNonceSize));  // not inside the initializer: see agent/state.cpp
  SessionSpec spec{ak_name, request.subscription, std::move(nonce),
                   now + options_.session_lifetime};
  protocol::ProvisioningSession session;
  session.session = MCIMD_TRY(registry_.create_session(spec, now));
  session.nonce = spec.nonce;
  session.expires = spec.expires;
  return json_answer(protocol::to_json(session));
}

Result<Answer> OperatorService::package(std::string_view body, protocol::Timestamp now) {
  auto request = MCIMD_TRY(protocol::package_request_from_json(body));
  // The session is taken once: a second request on it is Replayed, a late one Expired.
  auto session = MCIMD_TRY(registry_.take_session(request.session, now));
  auto device = MCIMD_TRY(registry_.find(session.ak_name));
  if (!device || !device->enrolled) return fail(Code::NotAuthorized, "the session's device is not enrolled");
  MCIMD_CHECK(check_package_request(request, device->ak_public, session.nonce));

  // Remote validation of the platform the package is for (TR 33.812 PVA).
  DeviceVerifyOptions vo;
  vo.nonce = session.nonce;
  vo.policy = options_.policy;
  vo.ek_cas = options_.ek_cas;
  auto verification = MCIMD_TRY(verify_device(registry_, request.evidence, vo));
  if (!verification.result.ok)
    return fail(Code::NotAuthorized, "platform validation refused: " + verification.result.failures());

  // The subscription: the one the subscriber linked, else a new one, its AuC record first.
  McimCredentials mcim;
  if (session.subscription) {
    auto found = MCIMD_TRY(registry_.find_subscription(*session.subscription));
    if (!found) return fail(Code::NotFound, "no subscription " + *session.subscription);
    mcim = MCIMD_TRY(read_auc_record(options_.auc_dir, *found));
  } else {
    auto sub = MCIMD_TRY(create_random_subscription(registry_, {options_.operator_id, options_.iccid_prefix}, now));
    mcim = MCIMD_TRY(new_auc_record(options_.auc_dir, sub));
    MCIMD_CHECK(registry_.link_subscription(session.ak_name, sub.id, now));
  }

  const PackageIssue issue{"p-" + to_hex(MCIMD_TRY(random_bytes(12))), options_.operator_id, now,
                           options_.package_lifetime};
  auto built = MCIMD_TRY(make_package(registry_, request, session.ak_name, mcim, issue, options_.package_signer));
  MCIMD_CHECK(record_issued_package(registry_, session.ak_name, built, mcim));
  log::info("Issued package " + issue.package_id + " (counter " + std::to_string(built.header.counter) + ", ICCID " +
            mcim.iccid + ") for device " + request.device);
  return Answer{200, "application/jose", std::move(built.jws)};
}

Result<Answer> OperatorService::receipt(std::string_view body, protocol::Timestamp now) {
  auto receipt = MCIMD_TRY(protocol::install_receipt_from_json(body));
  auto claimed = MCIMD_TRY(protocol::receipt_body_from_json(receipt.body));
  auto record = MCIMD_TRY(registry_.find_package(claimed.package_id));
  if (!record) return fail(Code::NotFound, "no package " + claimed.package_id + " was issued here");
  auto device = MCIMD_TRY(registry_.find(record->spec.ak_name));
  if (!device) return fail(Code::NotFound, "the package's device is not registered");
  ExpectedReceipt expected{record->spec.package_id, device_id(record->spec.ak_name), record->spec.counter,
                           record->spec.package_sha256, record->spec.iccid};
  MCIMD_CHECK(verify_install_receipt(receipt, device->ak_public, expected));
  auto attest = MCIMD_TRY(attestation::parse_attest(receipt.quote_message));
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  auto digest = MCIMD_TRY(attestation::hash(attestation::alg::kSha256, bytes));
  InstallReceiptInfo info{attest.clock, std::move(digest), now};
  // A receipt verified for a package recorded as installed already: an agent resuming after a
  // crash between our answer and its own record of it. The first receipt stays recorded; the
  // answer is the same, so delivery can be repeated safely.
  if (auto marked = registry_.mark_installed(record->spec.package_id, info); !marked) {
    if (marked.error().code != Code::Replayed) return tl::unexpected(marked.error());
    log::info("Package " + record->spec.package_id + ": its receipt again, recorded already");
    return no_content();
  }
  log::info("Package " + record->spec.package_id + " installed on device " + expected.device);
  return no_content();
}

Status serve(OperatorService& service, const ServerOptions& options, const std::atomic<bool>& stop,
             const std::function<void(int port)>& ready) {
  for (const auto* p : {&options.certificate, &options.key, &options.client_ca})
    if (!std::filesystem::is_regular_file(*p)) return fail(Code::ConfigError, "cannot read " + p->string());
  httplib::SSLServer server(options.certificate.c_str(), options.key.c_str(), options.client_ca.c_str());
  if (!server.is_valid())
    return fail(Code::ConfigError, "the TLS certificate, key or client CA does not load (" +
                                       options.certificate.string() + ", " + options.key.string() + ", " +
                                       options.client_ca.string() + ")");
  server.set_payload_max_length(protocol::kMaxDocumentSize);
  server.set_read_timeout(options.read_timeout);
  server.set_write_timeout(options.read_timeout);
  auto handler = [&service](const httplib::Request& req, httplib::Response& res) {
    const auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    Answer a = service.handle(req.path, req.body, now);
    res.status = a.status;
    if (a.status != 204) res.set_content(a.body, a.content_type.c_str());
  };
  for (const char* path :
       {"/v1/enrolments", "/v1/enrolments/activate", "/v1/sessions", "/v1/packages", "/v1/receipts"})
    server.Post(path, handler);

  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.address.c_str());
  } else if (!server.bind_to_port(options.address.c_str(), port)) {
    port = -1;
  }
  if (port < 0) return fail(Code::IoError, "cannot listen on " + options.address + ":" + std::to_string(options.port));
  std::atomic<bool> ended{false};
  std::thread watcher([&] {
    while (!stop.load() && !ended.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
  });
  ready(port);
  const bool listened = server.listen_after_bind();
  ended = true;
  watcher.join();
  if (!listened && !stop.load()) return fail(Code::IoError, "the HTTPS server stopped unexpectedly");
  return {};
}

}  // namespace mcimd::op
