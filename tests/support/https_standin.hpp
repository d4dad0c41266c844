#pragma once
// A local HTTPS server standing in for the operator: cpp-httplib's SSLServer over OpenSSL on
// 127.0.0.1 and a free port, serving in a thread of its own until the end of the scope. Its
// certificate and the client CA it requires (if any) are files, as the test PKI writes them.
// Header-only: only the agent's tests use it.
#include <httplib.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace mcimd::test {

class HttpsStandin {
 public:
  // server_chain: PEM, leaf first; client_ca: when set, a client certificate issued under it is
  // required for every connection (mTLS), as an operator that authenticates gateways does.
  HttpsStandin(const std::filesystem::path& server_chain, const std::filesystem::path& server_key,
               const std::optional<std::filesystem::path>& client_ca = std::nullopt)
      : server_(server_chain.c_str(), server_key.c_str(), client_ca ? client_ca->c_str() : nullptr) {
    if (!server_.is_valid()) throw std::runtime_error("HttpsStandin: the TLS server could not be set up");
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("HttpsStandin: no port to bind");
    // The socket listens from here on: connections made before the thread accepts them wait.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~HttpsStandin() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  HttpsStandin(const HttpsStandin&) = delete;
  HttpsStandin& operator=(const HttpsStandin&) = delete;

  httplib::Server& routes() { return server_; }
  // "https://localhost:PORT": the name the test PKI's server certificate carries.
  std::string url() const { return "https://localhost:" + std::to_string(port_); }
  int port() const { return port_; }

  // The common name of the certificate the client presented on this request's connection, ""
  // when it presented none.
  static std::string client_common_name(const httplib::Request& request) {
    if (!request.ssl) return "";
    X509* cert = SSL_get1_peer_certificate(request.ssl);
    if (!cert) return "";
    char name[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof name);
    X509_free(cert);
    return name;
  }

 private:
  httplib::SSLServer server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace mcimd::test
