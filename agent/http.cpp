#include "agent/http.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "protocol/provisioning.hpp"

namespace mcimd::agent {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

tl::unexpected<Failure> operator_failure(FailureKind kind, Code code, std::string message) {
  return failed(Party::Operator, kind, code, std::move(message));
}

// libcurl's codes for a server certificate that does not verify, and for an anchor it could not
// load (curl 7.88 libcurl-errors(3)).
bool is_verification_failure(CURLcode c) {
  switch (c) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return true;
    default:
      return false;
  }
}

// Errors of our own side of TLS or of the request we built: the configuration has to change.
bool is_local_setup_failure(CURLcode c) {
  switch (c) {
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CIPHER:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_NOT_BUILT_IN:
    case CURLE_FUNCTION_NOT_FOUND:
    case CURLE_UNKNOWN_OPTION:
      return true;
    default:
      return false;
  }
}

// A TLS alert the server sent during or right after the handshake (TLS 1.3 checks the client's
// certificate after the client considers the handshake done, so the alert may arrive on the
// first read). OpenSSL names them "... alert <description>" (RFC 8446 §6.2): bad certificate,
// certificate required, unknown ca, handshake failure, access denied, protocol version...
// These do not change on a retry. "internal error" is the server's own trouble and may pass.
bool is_refusing_alert(CURLcode c, std::string_view reason) {
  if (c != CURLE_SSL_CONNECT_ERROR && c != CURLE_RECV_ERROR && c != CURLE_SEND_ERROR) return false;
  std::string r = lower(reason);
  return r.find("alert") != std::string::npos && r.find("internal error") == std::string::npos;
}

// The operator's refusal: an mcimd-error-1 document, or nullopt for any other body.
std::optional<protocol::ProtocolError> protocol_error_in(const std::string& content_type, const std::string& body) {
  if (!has_media_type(content_type, "application/json")) return std::nullopt;
  auto parsed = protocol::protocol_error_from_json(body);
  if (!parsed) return std::nullopt;
  return *parsed;
}

// common/error.hpp's code for its name; the protocol parser already refused names it does not know.
std::optional<Code> code_from_name(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(Code::Internal); ++c)
    if (code_name(static_cast<Code>(c)) == name) return static_cast<Code>(c);
  return std::nullopt;
}

// Printable ASCII only, bounded: an operator's message ends up in logs and on terminals.
std::string printable(std::string_view text, std::size_t max = 300) {
  std::string out;
  for (char ch : text.substr(0, max)) out += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  if (text.size() > max) out += "...";
  return out;
}

Outcome<HttpAnswer> classify_answer(std::string_view url, const Transfer& t) {
  const long s = t.status;
  const std::string where = " from " + std::string(url);
  if (s >= 200 && s < 300) return HttpAnswer{s, t.content_type, t.body};
  auto refusal = protocol_error_in(t.content_type, t.body);
  std::string status = "HTTP " + std::to_string(s);
  if (s == 429 || (s >= 500 && s < 600)) {
    std::string msg = status + where;
    if (refusal) msg += ": " + refusal->code + ": " + printable(refusal->message);
    return operator_failure(FailureKind::Transient, Code::Busy, std::move(msg));
  }
  if (s >= 400 && s < 500) {
    if (refusal) {
      auto code = code_from_name(refusal->code);
      if (!code)
        return operator_failure(FailureKind::Refused, Code::InvalidArgument,
                                status + where + " with an error code mcimd does not know: '" + printable(refusal->code, 64) +
                                    "': " + printable(refusal->message));
      return operator_failure(FailureKind::Refused, *code, printable(refusal->message) + " (" + status + where + ")");
    }
    Code code = (s == 401 || s == 403) ? Code::NotAuthorized : s == 404 ? Code::NotFound : Code::InvalidArgument;
    return operator_failure(FailureKind::Refused, code, status + where + " without an mcimd-error-1 answer");
  }
  return operator_failure(FailureKind::Malformed, Code::InvalidArgument,
                          "unexpected " + status + where + (s >= 300 && s < 400 ? " (redirects are not followed)" : ""));
}

// Body of a POST answer, kept up to the limit; beyond it the transfer is stopped.
struct Sink {
  std::string* body;
  std::size_t limit;
  bool too_large = false;
};

size_t write_answer(char* data, size_t size, size_t n, void* userdata) {
  auto* sink = static_cast<Sink*>(userdata);
  const size_t len = size * n;
  if (sink->body->size() + len > sink->limit) {
    sink->too_large = true;
    return 0;  // CURLE_WRITE_ERROR
  }
  sink->body->append(data, len);
  return len;
}

Status check_readable_file(const std::filesystem::path& file, std::string_view key) {
  struct stat st {};
  if (::stat(file.c_str(), &st) < 0)
    return fail(Code::ConfigError, std::string(key) + ": cannot use " + file.string() + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail(Code::ConfigError, std::string(key) + ": " + file.string() + " is not a regular file");
  if (::access(file.c_str(), R_OK) < 0)
    return fail(Code::ConfigError, std::string(key) + ": cannot read " + file.string() + ": " + std::strerror(errno));
  return {};
}

// The key authenticates this gateway to its operator: a copy readable by another account would
// let that account provision (or deprovision) in the gateway's name.
Status check_private_key_file(const std::filesystem::path& file) {
  MCIMD_CHECK(check_readable_file(file, "client-key"));
  struct stat st {};
  if (::stat(file.c_str(), &st) < 0) return fail_errno("Failed to stat " + file.string(), errno);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(Code::ConfigError, "client-key: " + file.string() + " has mode " + mode +
                                       ": group and others must have no access (chmod 0600)");
  }
  return {};
}

std::once_flag curl_initialised;

}  // namespace

bool has_media_type(std::string_view content_type, std::string_view expected) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  return lower(type) == lower(expected);
}

Outcome<HttpAnswer> classify_transfer(std::string_view url, const Transfer& t) {
  const std::string target(url);
  if (t.too_large || t.result == CURLE_FILESIZE_EXCEEDED)
    return operator_failure(FailureKind::Malformed, Code::InvalidArgument,
                            "the answer from " + target + " is larger than the agent accepts");
  if (t.result == CURLE_OK) return classify_answer(url, t);
  const std::string reason = printable(t.reason);
  if (is_verification_failure(t.result))
    return operator_failure(FailureKind::Untrusted, Code::UntrustedServer,
                            "the TLS certificate of " + target + " does not verify: " + reason);
  if (is_refusing_alert(t.result, t.reason))
    return operator_failure(FailureKind::Refused, Code::NotAuthorized,
                            target + " refused the TLS session (is the client certificate one it accepts?): " + reason);
  if (is_local_setup_failure(t.result))
    return failed(Party::Agent, FailureKind::Local, Code::ConfigError, "cannot talk to " + target + ": " + reason);
  if (t.result == CURLE_OUT_OF_MEMORY)
    return failed(Party::Agent, FailureKind::Local, Code::Internal, "out of memory talking to " + target);
  if (t.result == CURLE_WEIRD_SERVER_REPLY || t.result == CURLE_BAD_CONTENT_ENCODING)
    return operator_failure(FailureKind::Malformed, Code::InvalidArgument, target + " answered: " + reason);
  // Connection refused or reset, timeouts, DNS not ready at boot, a TLS session cut short.
  return operator_failure(FailureKind::Transient, Code::IoError, "cannot reach " + target + ": " + reason);
}

Result<HttpClient> HttpClient::create(HttpOptions options) {
  const TlsOptions& tls = options.tls;
  if (tls.ca_bundle) MCIMD_CHECK(check_readable_file(*tls.ca_bundle, "ca-bundle"));
  if (tls.client_certificate.has_value() != tls.client_key.has_value())
    return fail(Code::ConfigError, "client-certificate and client-key go together");
  if (tls.client_certificate) {
    MCIMD_CHECK(check_readable_file(*tls.client_certificate, "client-certificate"));
    MCIMD_CHECK(check_private_key_file(*tls.client_key));
  }
  std::call_once(curl_initialised, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CurlEasy easy(curl_easy_init());
  if (!easy) return fail(Code::Internal, "curl_easy_init failed");
  return HttpClient(std::move(options), std::move(easy));
}

Outcome<HttpAnswer> HttpClient::post(const std::string& url, std::string_view body, std::string_view content_type) {
  CURL* c = easy_.get();
  curl_easy_reset(c);  // nothing of the previous request's options stays; the connection does
  Transfer t;
  Sink sink{&t.body, options_.max_answer_size};
  char reason[CURL_ERROR_SIZE] = {};

  CurlList headers;
  for (std::string h : {"Content-Type: " + std::string(content_type), std::string("Accept: application/json, application/jose"),
                        // No "Expect: 100-continue" round trip before bodies over 1 KiB.
                        std::string("Expect:")}) {
    curl_slist* next = curl_slist_append(headers.get(), h.c_str());
    if (!next) return failed(Party::Agent, FailureKind::Local, Code::Internal, "out of memory");
    (void)headers.release();
    headers.reset(next);
  }

  const TlsOptions& tls = options_.tls;
  bool ok = true;
  auto set = [&](CURLoption option, auto value) { ok = ok && curl_easy_setopt(c, option, value) == CURLE_OK; };
  set(CURLOPT_URL, url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "https");  // never plain HTTP, whatever the URL says
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_ERRORBUFFER, reason);
  set(CURLOPT_USERAGENT, "mcimd-agent/" MCIMD_AGENT_VERSION);
  set(CURLOPT_HTTPHEADER, headers.get());
  set(CURLOPT_POST, 1L);
  set(CURLOPT_POSTFIELDS, body.data());
  set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  set(CURLOPT_WRITEFUNCTION, &write_answer);
  set(CURLOPT_WRITEDATA, &sink);
  set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options_.max_answer_size));
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  if (tls.ca_bundle) {
    set(CURLOPT_CAINFO, tls.ca_bundle->c_str());
    // libcurl also reads a compiled-in CA directory (Debian: /etc/ssl/certs) unless told not to;
    // the configured bundle must be the only anchor.
    set(CURLOPT_CAPATH, static_cast<const char*>(nullptr));
  }
  if (tls.client_certificate) {
    set(CURLOPT_SSLCERT, tls.client_certificate->c_str());
    set(CURLOPT_SSLCERTTYPE, "PEM");
    set(CURLOPT_SSLKEY, tls.client_key->c_str());
    set(CURLOPT_SSLKEYTYPE, "PEM");
  }
  if (!ok) return failed(Party::Agent, FailureKind::Local, Code::Internal, "libcurl refused an option for " + url);

  t.result = curl_easy_perform(c);
  t.reason = reason[0] ? reason : curl_easy_strerror(t.result);
  t.too_large = sink.too_large;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.status);
  const char* type = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type) t.content_type = type;
  // The options point into this frame (headers, sink, error buffer): drop them before returning.
  curl_easy_reset(c);
  return classify_transfer(url, t);
}

}  // namespace mcimd::agent
