#pragma once
// HTTPS POSTs to the operator over libcurl: the server is verified against a configured CA bundle
// (never the system store unless configured), hostname verification stays on, TLS 1.2 is the
// floor, and the agent authenticates with a client certificate. Every answer is bounded in size
// and time, and every failure is classified once, here, for the retry logic above.
#include <curl/curl.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "agent/failure.hpp"
#include "common/c_handle.hpp"

namespace mcimd::agent {

using CurlEasy = CHandle<CURL, curl_easy_cleanup>;
using CurlList = CHandle<curl_slist, curl_slist_free_all>;

// Operator answers are small JSON documents or a JWS of a few KiB; anything larger is refused
// before it is kept in memory.
inline constexpr std::size_t kMaxAnswerSize = 1u << 20;

struct TlsOptions {
  // PEM certificates the server's chain must end in. nullopt: libcurl's built-in store, only when
  // the configuration asks for it by name ("ca-bundle: system").
  std::optional<std::filesystem::path> ca_bundle;
  // The agent's certificate (PEM) and its key (PEM, mode 0600 or stricter). Both or neither.
  std::optional<std::filesystem::path> client_certificate;
  std::optional<std::filesystem::path> client_key;
};

struct HttpOptions {
  TlsOptions tls;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{60'000};  // the whole exchange, connection included
  std::size_t max_answer_size = kMaxAnswerSize;
};

struct HttpAnswer {
  long status = 0;
  std::string content_type;  // as sent, parameters included ("application/json; charset=utf-8")
  std::string body;
};

// How one transfer ended, as libcurl reported it: the input of classify_transfer().
struct Transfer {
  CURLcode result = CURLE_OK;
  std::string reason;       // libcurl's error buffer, or curl_easy_strerror() when that is empty
  long status = 0;          // HTTP status, 0 when no answer arrived
  std::string content_type;
  std::string body;
  bool too_large = false;   // the answer passed max_answer_size and was cut off
};

// Turns a finished transfer into the answer or a Failure of the operator party:
//   certificate verification failed (peer, issuer, CA file, pinned key, status) → Untrusted,
//       UntrustedServer naming the URL and libcurl's reason
//   the server closed the handshake with an alert about our certificate → Refused, NotAuthorized
//   our own certificate or key is unusable                   → Local, ConfigError
//   no connection, a timeout, a reset, a lost TLS session     → Transient, IoError
//   an answer over the size limit                            → Malformed, InvalidArgument
//   HTTP 2xx                                                 → the answer
//   HTTP 429 or 5xx                                          → Transient, Busy (the operator's message when
//                                                              the body is an mcimd-error-1 document)
//   another 4xx with an mcimd-error-1 body                   → Refused with that code and message; a code
//                                                              name mcimd does not know → InvalidArgument naming it
//   another 4xx without one                                  → Refused: 401/403 NotAuthorized, 404 NotFound,
//                                                              else InvalidArgument, naming the status
//   anything else (1xx, 3xx: redirects are not followed)     → Malformed, InvalidArgument
[[nodiscard]] Outcome<HttpAnswer> classify_transfer(std::string_view url, const Transfer& transfer);

// True when a media type (parameters ignored, case-insensitive) is `expected`.
bool has_media_type(std::string_view content_type, std::string_view expected);

class HttpClient {
 public:
  // Checks, before any connection is tried: the CA bundle and client certificate are readable
  // regular files; the client key is a regular file we can read and neither group nor others can
  // read or write (ConfigError naming the file otherwise); certificate and key come together.
  [[nodiscard]] static Result<HttpClient> create(HttpOptions options);

  // POSTs `body` as `content_type` to an https:// URL; the answer in full, classified by
  // classify_transfer(). One connection is kept between calls.
  [[nodiscard]] Outcome<HttpAnswer> post(const std::string& url, std::string_view body,
                                         std::string_view content_type);

 private:
  HttpClient(HttpOptions options, CurlEasy easy) : options_(std::move(options)), easy_(std::move(easy)) {}

  HttpOptions options_;
  CurlEasy easy_;
};

}  // namespace mcimd::agent
