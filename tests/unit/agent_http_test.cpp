// The agent's HTTPS client against a real local TLS server (cpp-httplib over OpenSSL) with
// certificates from the test PKI: server verification, the client certificate, timeouts, and
// how operator answers are classified for retrying.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "agent/http.hpp"
#include "agent/operator_api.hpp"
#include "agent/retry.hpp"
#include "tests/support/manual_retry_clock.hpp"
#include "tests/support/https_standin.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_pki.hpp"

using namespace mcimd;
using namespace mcimd::agent;
using mcimd::test::ManualRetryClock;
using mcimd::test::HttpsStandin;
using mcimd::test::TempDir;
using mcimd::test::TestPki;

namespace {

constexpr const char* kSession =
    R"({"format":"mcimd-provisioning-session-1","session":"s-1","nonce":"WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo","expires":"2030-01-01T00:00:00Z"})";

std::string error_body(std::string_view code, std::string_view message) {
  return R"({"format":"mcimd-error-1","code":")" + std::string(code) + R"(","message":")" + std::string(message) +
         R"("})";
}

// An operator PKI (server certificate) and a gateway PKI (client certificates), their files in
// a temporary directory.
class AgentHttps : public ::testing::Test {
 protected:
  AgentHttps()
      : server_files(operator_pki.tls_server().write(dir.path(), "server")),
        client_files(gateway_pki.tls_client().write(dir.path(), "client")),
        operator_ca(operator_pki.write_root(dir.path(), "operator-ca")),
        gateway_ca(gateway_pki.write_root(dir.path(), "gateway-ca")) {}

  HttpOptions options(std::optional<std::filesystem::path> ca = std::nullopt) const {
    HttpOptions o;
    o.tls.ca_bundle = ca ? *ca : operator_ca;
    o.tls.client_certificate = client_files.cert;
    o.tls.client_key = client_files.key;
    o.connect_timeout = Millis(5'000);
    o.timeout = Millis(10'000);
    return o;
  }

  HttpClient client(const HttpOptions& o) {
    auto c = HttpClient::create(o);
    if (!c) throw std::runtime_error(c.error().describe());
    return std::move(*c);
  }

  TempDir dir;
  TestPki operator_pki{"mcimd test operator"};
  TestPki gateway_pki{"mcimd test gateways"};
  mcimd::test::Credential::Files server_files;
  mcimd::test::Credential::Files client_files;
  std::filesystem::path operator_ca;
  std::filesystem::path gateway_ca;
};

}  // namespace

TEST_F(AgentHttps, PostsToATrustedServerAndPresentsItsClientCertificate) {
  HttpsStandin server(server_files.chain, server_files.key, gateway_ca);
  std::string seen_client, seen_type, seen_body;
  server.routes().Post("/v1/sessions", [&](const httplib::Request& req, httplib::Response& res) {
    seen_client = HttpsStandin::client_common_name(req);
    seen_type = req.get_header_value("Content-Type");
    seen_body = req.body;
    res.set_content(kSession, "application/json");
  });
  auto http = client(options());
  auto answer = http.post(server.url() + "/v1/sessions", R"({"x":1})", "application/json");
  ASSERT_TRUE(answer) << answer.error().describe();
  EXPECT_EQ(answer->status, 200);
  EXPECT_TRUE(has_media_type(answer->content_type, "application/json"));
  EXPECT_EQ(answer->body, kSession);
  EXPECT_EQ(seen_client, "mcimd test gateway");
  EXPECT_EQ(seen_type, "application/json");
  EXPECT_EQ(seen_body, R"({"x":1})");
}

TEST_F(AgentHttps, RefusesAServerItsCaBundleDoesNotVouchFor) {
  HttpsStandin server(server_files.chain, server_files.key);
  std::atomic<int> hits{0};
  server.routes().Post("/v1/sessions", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.set_content(kSession, "application/json");
  });
  // The gateway CA is a valid anchor, but not the one that issued the server's certificate.
  auto http = client(options(gateway_ca));
  ManualRetryClock clock;
  auto answer = with_retries<HttpAnswer>(RetryPolicy{}, clock, [&] {
    return http.post(server.url() + "/v1/sessions", "{}", "application/json");
  });
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().kind, FailureKind::Untrusted);
  EXPECT_EQ(answer.error().error.code, Code::UntrustedServer);
  EXPECT_EQ(exit_code_for(answer.error()), kExitUntrustedServer);
  EXPECT_NE(answer.error().error.message.find(server.url()), std::string::npos);
  EXPECT_EQ(hits, 0);  // nothing was sent to it, and it was tried once
}

TEST_F(AgentHttps, IsRefusedByAServerThatDoesNotAcceptItsClientCertificate) {
  // The server wants gateways of the operator's own CA, and this one's is from another.
  HttpsStandin server(server_files.chain, server_files.key, operator_ca);
  std::atomic<int> hits{0};
  server.routes().Post("/v1/sessions", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.set_content(kSession, "application/json");
  });
  auto http = client(options());
  auto answer = http.post(server.url() + "/v1/sessions", "{}", "application/json");
  ASSERT_FALSE(answer);
  EXPECT_NE(answer.error().kind, FailureKind::Untrusted);
  EXPECT_EQ(hits, 0);
}

TEST_F(AgentHttps, GivesUpOnAServerThatDoesNotAnswerInTime) {
  HttpsStandin server(server_files.chain, server_files.key);
  server.routes().Post("/v1/sessions", [&](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1'500));
    res.set_content(kSession, "application/json");
  });
  HttpOptions o = options();
  o.timeout = Millis(300);
  auto http = client(o);
  const auto start = std::chrono::steady_clock::now();
  auto answer = http.post(server.url() + "/v1/sessions", "{}", "application/json");
  ASSERT_FALSE(answer);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1'400));
  EXPECT_EQ(answer.error().kind, FailureKind::Transient);
  EXPECT_EQ(answer.error().error.code, Code::IoError);
}

TEST_F(AgentHttps, GivesUpOnAHandshakeThatNeverCompletes) {
  // A TCP listener that never speaks TLS: the connection is made, the handshake is not, and
  // the connect timeout covers both.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  HttpOptions o = options();
  o.connect_timeout = Millis(300);
  auto http = client(o);
  const auto start = std::chrono::steady_clock::now();
  auto answer = http.post("https://localhost:" + std::to_string(ntohs(addr.sin_port)) + "/v1/sessions", "{}",
                          "application/json");
  ::close(listener);
  ASSERT_FALSE(answer);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(5'000));
  EXPECT_EQ(answer.error().kind, FailureKind::Transient);
}

TEST_F(AgentHttps, RetriesA5xxUntilTheOperatorAnswers) {
  HttpsStandin server(server_files.chain, server_files.key, gateway_ca);
  std::atomic<int> hits{0};
  server.routes().Post("/v1/sessions", [&](const httplib::Request&, httplib::Response& res) {
    if (++hits < 3) {
      res.status = hits == 1 ? 503 : 429;
      res.set_content(error_body("Busy", "registry is busy"), "application/json");
      return;
    }
    res.set_content(kSession, "application/json");
  });
  auto http = client(options());
  OperatorApi op(http, server.url());
  ManualRetryClock clock;
  auto session = with_retries<protocol::ProvisioningSession>(RetryPolicy{}, clock, [&] {
    return op.open_session(protocol::ProvisioningSessionRequest{"000b" + std::string(64, 'a'), std::nullopt});
  });
  ASSERT_TRUE(session) << session.error().describe();
  EXPECT_EQ(session->session, "s-1");
  EXPECT_EQ(hits, 3);
}

TEST_F(AgentHttps, NeverRetriesA4xxAndSurfacesTheOperatorsErrorCode) {
  HttpsStandin server(server_files.chain, server_files.key, gateway_ca);
  std::atomic<int> hits{0};
  server.routes().Post("/v1/packages", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.status = 409;
    res.set_content(error_body("Replayed", "session s-1 is used"), "application/json");
  });
  auto http = client(options());
  OperatorApi op(http, server.url());
  ManualRetryClock clock;
  auto package = with_retries<std::string>(RetryPolicy{}, clock, [&] { return op.fetch_package("{}"); });
  ASSERT_FALSE(package);
  EXPECT_EQ(hits, 1);
  EXPECT_EQ(package.error().party, Party::Operator);
  EXPECT_EQ(package.error().kind, FailureKind::Refused);
  EXPECT_EQ(package.error().error.code, Code::Replayed);
  EXPECT_NE(package.error().error.message.find("session s-1 is used"), std::string::npos);
  EXPECT_EQ(exit_code_for(package.error()), kExitRefusedByOperator);
}

TEST_F(AgentHttps, NamesA4xxWithoutAnErrorDocumentByItsStatus) {
  HttpsStandin server(server_files.chain, server_files.key, gateway_ca);
  server.routes().Post("/v1/receipts", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 403;
    res.set_content("<html>forbidden</html>", "text/html");
  });
  auto http = client(options());
  OperatorApi op(http, server.url());
  auto sent = op.send_receipt("{}");
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().kind, FailureKind::Refused);
  EXPECT_EQ(sent.error().error.code, Code::NotAuthorized);
  EXPECT_NE(sent.error().error.message.find("HTTP 403"), std::string::npos);
}

TEST_F(AgentHttps, TakesTheContractsAnswers) {
  HttpsStandin server(server_files.chain, server_files.key, gateway_ca);
  std::string activate_body;
  server.routes().Post("/v1/enrolments/activate", [&](const httplib::Request& req, httplib::Response& res) {
    activate_body = req.body;
    res.status = 204;
  });
  server.routes().Post("/v1/receipts", [&](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  server.routes().Post("/v1/packages", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("eyJhbGciOiJFUzI1NiJ9.eyJwYWNrYWdlX2lkIjoicGtnLTEifQ.c2ln\n", "application/jose");
  });
  auto http = client(options());
  OperatorApi op(http, server.url());
  const std::string device = "000b" + std::string(64, 'a');
  SecureBytes secret{0x01, 0xab, 0xff};
  auto activated = op.finish_enrolment(device, secret);
  ASSERT_TRUE(activated) << activated.error().describe();
  EXPECT_EQ(activate_body, R"({"device":")" + device + R"(","secret":"01abff"})");
  auto receipt = op.send_receipt(R"({"format":"mcimd-install-receipt-1"})");
  ASSERT_TRUE(receipt) << receipt.error().describe();
  auto package = op.fetch_package("{}");
  ASSERT_TRUE(package) << package.error().describe();
  EXPECT_EQ(*package, "eyJhbGciOiJFUzI1NiJ9.eyJwYWNrYWdlX2lkIjoicGtnLTEifQ.c2ln");
  EXPECT_EQ(package_id_of(*package), "pkg-1");
}

TEST_F(AgentHttps, RefusesAnswersOutsideTheContract) {
  HttpsStandin server(server_files.chain, server_files.key, gateway_ca);
  server.routes().Post("/v1/receipts", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"ok":true})", "application/json");  // 200, not 204
  });
  server.routes().Post("/v1/packages", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"package":"x"})", "application/json");  // not application/jose
  });
  server.routes().Post("/v1/sessions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(kMaxAnswerSize + 1, 'x'), "application/json");
  });
  auto http = client(options());
  OperatorApi op(http, server.url());
  auto receipt = op.send_receipt("{}");
  ASSERT_FALSE(receipt);
  EXPECT_EQ(receipt.error().kind, FailureKind::Malformed);
  auto package = op.fetch_package("{}");
  ASSERT_FALSE(package);
  EXPECT_EQ(package.error().kind, FailureKind::Malformed);
  auto session = op.open_session(protocol::ProvisioningSessionRequest{"000b" + std::string(64, 'a'), std::nullopt});
  ASSERT_FALSE(session);
  EXPECT_EQ(session.error().kind, FailureKind::Malformed);
}

TEST_F(AgentHttps, RefusesAClientKeyOthersCanRead) {
  ASSERT_EQ(::chmod(client_files.key.c_str(), 0644), 0);
  auto http = HttpClient::create(options());
  ASSERT_FALSE(http);
  EXPECT_EQ(http.error().code, Code::ConfigError);
  EXPECT_NE(http.error().message.find("client-key"), std::string::npos);
}

TEST_F(AgentHttps, RefusesAMissingCaBundleBeforeConnecting) {
  auto http = HttpClient::create(options(dir.path() / "missing.pem"));
  ASSERT_FALSE(http);
  EXPECT_EQ(http.error().code, Code::ConfigError);
  EXPECT_NE(http.error().message.find("ca-bundle"), std::string::npos);
}
