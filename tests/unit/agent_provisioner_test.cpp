// A provisioning run end to end on the agent's side: the operator is a local HTTPS stand-in that
// keeps to docs/protocol.md's contract, mcimd a fake behind McimdLink. Each test reads as what
// the operator and mcimd saw; the crash tests stop the run right after each save of the state
// file, as a power cut would, and run again on what it left.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/provisioner.hpp"
#include "protocol/provisioning.hpp"
#include "tests/fuzz/provisioning_fixtures.hpp"
#include "tests/support/https_standin.hpp"
#include "tests/support/manual_retry_clock.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_pki.hpp"

using namespace mcimd;
using namespace mcimd::agent;
using mcimd::test::ManualRetryClock;
using mcimd::test::HttpsStandin;
using mcimd::test::TempDir;
using mcimd::test::TestPki;

namespace {

using mcimd::test::provisioning::tpm2b;

// The fake mcimd's keys: its AK's name is the device id.
const mcimd::test::provisioning::Device& device() {
  static const mcimd::test::provisioning::Device d;
  return d;
}

std::string error_body(std::string_view code, std::string_view message) {
  return protocol::to_json(protocol::ProtocolError{std::string(code), std::string(message)});
}

// The operator: enrols, opens sessions, issues one package per package request, records receipts.
class Operator {
 public:
  explicit Operator(HttpsStandin& server) {
    auto& r = server.routes();
    r.Post("/v1/enrolments", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(m);
      ++enrolments;
      protocol::CredentialChallenge c{tpm2b<TPM2B_ID_OBJECT, Tss2_MU_TPM2B_ID_OBJECT_Marshal>(68, 0x33),
                                      tpm2b<TPM2B_ENCRYPTED_SECRET, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal>(68, 0x44)};
      res.set_content(protocol::to_json(c), "application/json");
    });
    r.Post("/v1/enrolments/activate", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(m);
      ++activations;
      activation = req.body;
      res.status = 204;
    });
    r.Post("/v1/sessions", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(m);
      ++sessions;
      if (busy_sessions > 0) {
        --busy_sessions;
        res.status = 503;
        res.set_content(error_body("Busy", "try later"), "application/json");
        return;
      }
      auto request = protocol::session_request_from_json(req.body);
      if (!request) {
        res.status = 400;
        res.set_content(error_body("InvalidArgument", request.error().message), "application/json");
        return;
      }
      session_device = request->device;
      protocol::ProvisioningSession s{"s-" + std::to_string(sessions), Bytes(32, static_cast<uint8_t>(sessions)),
                                      *protocol::parse_timestamp("2030-01-01T00:00:00Z")};
      res.set_content(protocol::to_json(s), "application/json");
    });
    r.Post("/v1/packages", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(m);
      ++package_requests;
      auto request = nlohmann::json::parse(req.body);
      const std::string session = request["session"];
      if (!answered.insert(session).second) {
        res.status = 409;
        res.set_content(error_body("Replayed", "session " + session + " is used"), "application/json");
        return;
      }
      issued.push_back(package_for(issued.size() + 1));
      res.set_content(issued.back(), "application/jose");
    });
    r.Post("/v1/receipts", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(m);
      receipts.push_back(req.body);
      res.status = 204;
    });
  }

  // A JWS compact text whose payload names its package id: enough for the agent, which passes it on.
  static std::string package_for(std::size_t n) {
    const std::string payload = R"({"package_id":"pkg-)" + std::to_string(n) + R"("})";
    return "eyJhbGciOiJFUzI1NiJ9." + base64url_encode(std::span(reinterpret_cast<const uint8_t*>(payload.data()),
                                                                payload.size())) +
           ".c2lnbmF0dXJl";
  }

  std::mutex m;
  int enrolments = 0, activations = 0, sessions = 0, package_requests = 0, busy_sessions = 0;
  std::string activation, session_device;
  std::set<std::string> answered;
  std::vector<std::string> issued, receipts;
};

// mcimd: releases the secret, answers package requests, installs packages (the same text again
// gives a fresh receipt), or refuses as told.
class FakeMcimd final : public McimdLink {
 public:
  Outcome<api::EndorsementData> get_endorsement(const std::string& ek_type) override {
    ek_types.push_back(ek_type);
    return api::EndorsementData{Bytes{0x00, 0x02, 0xaa, 0xbb}, std::nullopt, device().ak_public};
  }
  Outcome<SecureBytes> activate_credential(const std::string&, const Bytes&, const Bytes&) override {
    ++activations;
    return SecureBytes{0xde, 0xad, 0xbe, 0xef};
  }
  Outcome<std::string> request_package(const std::string& session, const Bytes& nonce) override {
    requests.push_back(session);
    if (unreachable > 0) {
      --unreachable;
      return tl::unexpected(mcimd_failure("RequestPackage", api::CallError{api::kNoServerError, "no bus"}));
    }
    return nlohmann::json{{"format", "mcimd-package-request-1"}, {"session", session}, {"operator_nonce", to_hex(nonce)}}
        .dump();
  }
  Outcome<InstalledPackage> install_package(const std::string& package) override {
    installs.push_back(package);
    if (refuse_install) {
      auto code = *refuse_install;
      refuse_install.reset();
      return tl::unexpected(mcimd_failure(
          "InstallPackage", api::CallError{"org.mcimd.Tre1.Error." + std::string(code_name(code)), "refused"}));
    }
    return InstalledPackage{"/org/mcimd/Tre1/Profile/1",
                            R"({"format":"mcimd-install-receipt-1","n":)" + std::to_string(installs.size()) + "}"};
  }

  std::vector<std::string> ek_types, requests, installs;
  int activations = 0, unreachable = 0;
  std::optional<Code> refuse_install;
};

struct PowerCut {
  std::string after;
};

class AProvisioningRun : public ::testing::Test {
 protected:
  AProvisioningRun()
      : server_files(operator_pki.tls_server().write(dir.path(), "server")),
        client_files(gateway_pki.tls_client().write(dir.path(), "client")),
        server(server_files.chain, server_files.key, gateway_pki.write_root(dir.path(), "gateway-ca")),
        op(server) {
    HttpOptions o;
    o.tls.ca_bundle = operator_pki.write_root(dir.path(), "operator-ca");
    o.tls.client_certificate = client_files.cert;
    o.tls.client_key = client_files.key;
    http.emplace(std::move(*HttpClient::create(o)));
    options.operator_url = server.url();
    options.state_dir = dir.path() / "state";
    options.subscription = "plan-7";
    options.now = [] { return *protocol::parse_timestamp("2029-06-01T00:00:00Z"); };
  }

  Outcome<RunReport> run() {
    Provisioner p(*http, mcimd, clock, progress);
    return p.run(options);
  }

  // Runs with a power cut right after `step` was saved; true when the cut happened.
  bool run_cut_after(std::string_view step) {
    RunOptions cut = options;
    cut.after_save = [step](std::string_view saved) {
      if (saved == step) throw PowerCut{std::string(saved)};
    };
    Provisioner p(*http, mcimd, clock, progress);
    try {
      (void)p.run(cut);
    } catch (const PowerCut&) {
      return true;
    }
    return false;
  }

  AgentState state() { return *load_state(options.state_dir); }

  TempDir dir;
  TestPki operator_pki{"mcimd test operator"};
  TestPki gateway_pki{"mcimd test gateways"};
  mcimd::test::Credential::Files server_files, client_files;
  HttpsStandin server;
  Operator op;
  FakeMcimd mcimd;
  ManualRetryClock clock;
  std::ostringstream progress;
  std::optional<HttpClient> http;
  RunOptions options;
};

}  // namespace

TEST_F(AProvisioningRun, EnrolsProvisionsAndDeliversTheReceipt) {
  auto report = run();
  ASSERT_TRUE(report) << report.error().describe() << "\n" << progress.str();
  EXPECT_FALSE(report->already_provisioned);
  EXPECT_EQ(report->run.step, Step::Done);
  EXPECT_EQ(report->run.package_id, "pkg-1");
  EXPECT_EQ(report->run.profile, "/org/mcimd/Tre1/Profile/1");

  const std::string id = device().id;
  EXPECT_EQ(op.enrolments, 1);
  EXPECT_EQ(op.activation, R"({"device":")" + id + R"(","secret":"deadbeef"})");
  EXPECT_EQ(op.session_device, id);
  EXPECT_EQ(mcimd.requests, std::vector<std::string>{"s-1"});
  // The package goes to mcimd and the receipt to the operator exactly as they came.
  EXPECT_EQ(mcimd.installs, op.issued);
  EXPECT_EQ(op.receipts, std::vector<std::string>{R"({"format":"mcimd-install-receipt-1","n":1})"});

  AgentState saved = state();
  EXPECT_TRUE(saved.enrolled(server.url(), id));
  ASSERT_TRUE(saved.run);
  EXPECT_EQ(saved.run->step, Step::Done);
}

TEST_F(AProvisioningRun, DoesNothingOnceProvisioned) {
  ASSERT_TRUE(run());
  auto again = run();
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->already_provisioned);
  EXPECT_EQ(op.sessions, 1);
  EXPECT_EQ(mcimd.installs.size(), 1u);
}

TEST_F(AProvisioningRun, ProvisionsAnewWhenAskedAndEnrolsOnlyOnce) {
  ASSERT_TRUE(run());
  options.again = true;
  auto again = run();
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_FALSE(again->already_provisioned);
  EXPECT_EQ(again->run.package_id, "pkg-2");
  EXPECT_EQ(op.enrolments, 1);
  EXPECT_EQ(op.sessions, 2);
}

// What each party sees when the run is cut right after a step and run again.
TEST_F(AProvisioningRun, ResumesAfterAPowerCutAtEveryStep) {
  struct Case {
    const char* after;
    int enrolments, sessions, package_requests;
    std::size_t installs, receipts;
  };
  const Case cases[] = {
      {"enrolled", 1, 1, 1, 1, 1},   // enrolment kept: not enrolled twice
      {"session", 1, 1, 1, 1, 1},    // the same session asked for its package
      {"package", 1, 1, 1, 1, 1},    // the same package installed, not fetched again
      {"installed", 1, 1, 1, 1, 1},  // the receipt sent after the restart, once
      {"done", 1, 1, 1, 1, 1},       // nothing more
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.after);
    TempDir fresh;
    options.state_dir = fresh.path() / "state";
    {
      std::lock_guard lock(op.m);
      op.enrolments = op.activations = op.sessions = op.package_requests = 0;
      op.answered.clear();
      op.issued.clear();
      op.receipts.clear();
    }
    mcimd = FakeMcimd{};
    ASSERT_TRUE(run_cut_after(c.after));
    auto resumed = run();
    ASSERT_TRUE(resumed) << resumed.error().describe() << "\n" << progress.str();
    EXPECT_EQ(resumed->already_provisioned, std::string(c.after) == "done");
    EXPECT_EQ(state().run->step, Step::Done);
    EXPECT_EQ(op.enrolments, c.enrolments);
    EXPECT_EQ(op.sessions, c.sessions);
    EXPECT_EQ(op.package_requests, c.package_requests);
    EXPECT_EQ(mcimd.installs.size(), c.installs);
    EXPECT_EQ(op.receipts.size(), c.receipts);
  }
}

TEST_F(AProvisioningRun, InstallsTheSamePackageAgainWhenTheFirstAnswerWasLost) {
  // mcimd installed it, but the agent stopped before saving that: the same text goes again and
  // mcimd answers with a fresh receipt, which is the one delivered.
  ASSERT_TRUE(run_cut_after("package"));
  mcimd.installs.push_back(op.issued.at(0));  // the install whose answer the power cut lost
  auto resumed = run();
  ASSERT_TRUE(resumed) << resumed.error().describe();
  EXPECT_EQ(mcimd.installs, (std::vector<std::string>{op.issued.at(0), op.issued.at(0)}));
  EXPECT_EQ(op.receipts, std::vector<std::string>{R"({"format":"mcimd-install-receipt-1","n":2})"});
}

TEST_F(AProvisioningRun, SendsTheSavedReceiptAgainAfterAPowerCut) {
  ASSERT_TRUE(run_cut_after("installed"));
  EXPECT_TRUE(op.receipts.empty());
  EXPECT_EQ(state().run->step, Step::Installed);
  ASSERT_TRUE(run());
  EXPECT_EQ(op.receipts, std::vector<std::string>{R"({"format":"mcimd-install-receipt-1","n":1})"});
  EXPECT_EQ(mcimd.installs.size(), 1u);
}

TEST_F(AProvisioningRun, OpensANewSessionWhenTheOperatorAlreadyAnsweredTheSavedOne) {
  ASSERT_TRUE(run_cut_after("session"));
  op.answered.insert("s-1");  // the operator answered it, the answer never arrived
  auto resumed = run();
  ASSERT_TRUE(resumed) << resumed.error().describe();
  EXPECT_EQ(op.sessions, 2);
  EXPECT_EQ(mcimd.requests, (std::vector<std::string>{"s-1", "s-2"}));
}

TEST_F(AProvisioningRun, AsksForANewPackageWhenMcimdNoLongerTakesTheSavedOne) {
  ASSERT_TRUE(run_cut_after("package"));
  mcimd.refuse_install = Code::Replayed;  // mcimd restarted and forgot the request's nonce
  auto resumed = run();
  ASSERT_TRUE(resumed) << resumed.error().describe();
  EXPECT_EQ(resumed->run.package_id, "pkg-2");
  EXPECT_EQ(op.sessions, 2);
  EXPECT_EQ(mcimd.installs.size(), 2u);
}

TEST_F(AProvisioningRun, EndsWithMcimdsRefusalOfAFreshPackageAndDiscardsIt) {
  mcimd.refuse_install = Code::SignatureInvalid;
  auto report = run();
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().party, Party::Mcimd);
  EXPECT_EQ(report.error().error.code, Code::SignatureInvalid);
  EXPECT_EQ(exit_code_for(report.error()), kExitRefusedByMcimd);
  EXPECT_EQ(mcimd.installs.size(), 1u);
  EXPECT_FALSE(state().run);
  EXPECT_TRUE(op.receipts.empty());
}

TEST_F(AProvisioningRun, RetriesABusyOperatorAndAnAbsentMcimd) {
  op.busy_sessions = 2;
  mcimd.unreachable = 1;
  auto report = run();
  ASSERT_TRUE(report) << report.error().describe();
  EXPECT_EQ(op.sessions, 3);
  EXPECT_EQ(mcimd.requests.size(), 2u);
  EXPECT_NE(progress.str().find("retrying"), std::string::npos);
}

TEST_F(AProvisioningRun, LeavesAnUnfinishedRunWithAnotherOperatorAlone) {
  ASSERT_TRUE(run_cut_after("package"));
  options.operator_url = "https://other.example";
  auto report = run();
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().error.code, Code::InvalidState);
  EXPECT_EQ(state().run->step, Step::Package);
}
