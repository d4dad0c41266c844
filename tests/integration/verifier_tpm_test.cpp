// The verifier against a real TPM (a private swtpm driven by tpm2-tools): credentials made by
// make_credential are released by TPM2_ActivateCredential for RSA and ECC EKs, quotes from
// tpm2_quote verify, and each attack is refused with its named check.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "attestation/credential.hpp"
#include "attestation/verifier.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/swtpm.hpp"
#include "tests/support/temp_dir.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;
namespace fs = std::filesystem;

namespace {

Bytes read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_all(const fs::path& p, const Bytes& data) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

// One TPM with its own working directory; tpm2-tools run against it without a resource manager,
// so transient objects are flushed after each command that leaves one loaded.
class Tpm {
 public:
  test::RunResult tool(std::vector<std::string> argv) {
    return test::run(argv, {{"TPM2TOOLS_TCTI", swtpm_.tcti()}});
  }
  void must(std::vector<std::string> argv) {
    auto r = tool(argv);
    ASSERT_EQ(r.exit_code, 0) << argv[0] << ": " << r.err;
    flush();
  }
  void flush() { tool({"tpm2_flushcontext", "-t"}); }
  fs::path file(const std::string& name) const { return dir_.path() / name; }
  std::string f(const std::string& name) const { return file(name).string(); }

  // EK (TCG default template) and an AK under it.
  void create_keys(const std::string& ek_alg, const std::string& ak_alg) {
    must({"tpm2_createek", "-c", f("ek.ctx"), "-G", ek_alg, "-u", f("ek.pub")});
    std::string scheme = ak_alg == "ecc" ? "ecdsa" : "rsassa";
    must({"tpm2_createak", "-C", f("ek.ctx"), "-c", f("ak.ctx"), "-G", ak_alg, "-g", "sha256", "-s", scheme, "-u",
          f("ak.pub"), "-n", f("ak.name")});
  }

  test::RunResult activate(const Bytes& credential_file) {
    write_all(file("cred.in"), credential_file);
    auto s = tool({"tpm2_startauthsession", "--policy-session", "-S", f("session.ctx")});
    EXPECT_EQ(s.exit_code, 0) << s.err;
    auto p = tool({"tpm2_policysecret", "-S", f("session.ctx"), "-c", "e"});
    EXPECT_EQ(p.exit_code, 0) << p.err;
    auto r = tool({"tpm2_activatecredential", "-c", f("ak.ctx"), "-C", f("ek.ctx"), "-i", f("cred.in"), "-o",
                   f("cred.out"), "-P", "session:" + f("session.ctx")});
    tool({"tpm2_flushcontext", f("session.ctx")});
    flush();
    return r;
  }

  protocol::Evidence quote(const Bytes& nonce, const std::string& selection, const std::string& key = "ak") {
    must({"tpm2_quote", "-c", f(key + ".ctx"), "-l", selection, "-q",
          to_hex(evidence_qualifying_data(nonce)), "-m", f("quote.msg"), "-s",
          f("quote.sig"), "-g", "sha256"});
    protocol::Evidence ev;
    ev.nonce = nonce;
    ev.quote_message = read_all(file("quote.msg"));
    ev.quote_signature = read_all(file("quote.sig"));
    ev.ak_public = read_all(file(key + ".pub"));
    // Values read right after the quote; nothing extends in between.
    std::string bank = selection.substr(0, selection.find(':'));
    must({"tpm2_pcrread", selection, "-o", f("pcrs.bin")});
    Bytes raw = read_all(file("pcrs.bin"));
    std::size_t size = hash_size(*hash_alg_from_name(bank));
    protocol::PcrBank values{bank, {}};
    std::string list = selection.substr(selection.find(':') + 1);
    std::size_t i = 0;
    for (std::size_t pos = 0; pos <= list.size();) {
      std::size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      unsigned pcr = unsigned(std::stoul(list.substr(pos, comma - pos)));
      values.values[pcr] = Bytes(raw.begin() + long(i * size), raw.begin() + long((i + 1) * size));
      ++i;
      pos = comma + 1;
    }
    EXPECT_EQ(raw.size(), i * size);
    ev.pcrs = {values};
    return ev;
  }

  test::Swtpm swtpm_;
  test::TempDir dir_;
};

void expect_refused(const VerificationResult& r, const std::string& check, const std::string& reason = {}) {
  EXPECT_FALSE(r.ok);
  const Check* c = r.find(check);
  ASSERT_NE(c, nullptr) << "no check " << check << "; failures: " << r.failures();
  EXPECT_FALSE(c->passed) << check;
  if (!reason.empty()) {
    EXPECT_NE(c->reason.find(reason), std::string::npos) << c->reason;
  }
}

class ACredentialFromMakeCredential : public ::testing::TestWithParam<const char*> {};

TEST_P(ACredentialFromMakeCredential, IsReleasedByActivateCredential) {
  Tpm tpm;
  ASSERT_NO_FATAL_FAILURE(tpm.create_keys(GetParam(), "ecc"));
  Bytes ak_pub = read_all(tpm.file("ak.pub"));
  auto name = ak_name(ak_pub);
  ASSERT_TRUE(name) << name.error().describe();
  EXPECT_EQ(*name, read_all(tpm.file("ak.name")));  // our Name equals the TPM's
  Bytes secret = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  auto challenge = make_credential(read_all(tpm.file("ek.pub")), *name, secret);
  ASSERT_TRUE(challenge) << challenge.error().describe();
  auto r = tpm.activate(to_tpm2_tools_credential(*challenge));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_all(tpm.file("cred.out")), secret);
}

TEST_P(ACredentialFromMakeCredential, ForAnAkOfAnotherTpmIsNotReleased) {
  Tpm a, b;
  ASSERT_NO_FATAL_FAILURE(a.create_keys(GetParam(), "ecc"));
  ASSERT_NO_FATAL_FAILURE(b.create_keys(GetParam(), "ecc"));
  // The device presents A's EK with B's AK: the challenge is bound to A's EK, so B cannot open it,
  // and A cannot either, because the AK it holds has another name.
  auto challenge = make_credential(read_all(a.file("ek.pub")), *ak_name(read_all(b.file("ak.pub"))), Bytes(16, 7));
  ASSERT_TRUE(challenge);
  Bytes file = to_tpm2_tools_credential(*challenge);
  // Both refusals are the TPM's, in TPM2_ActivateCredential itself.
  auto by_b = b.activate(file);
  EXPECT_NE(by_b.exit_code, 0);
  EXPECT_NE(by_b.err.find("Esys_ActivateCredential("), std::string::npos) << by_b.err;
  // A decrypts the seed, but the outer HMAC covers the name of B's AK (Part 1 §24.5).
  auto by_a = a.activate(file);
  EXPECT_NE(by_a.exit_code, 0);
  EXPECT_NE(by_a.err.find("integrity check failed"), std::string::npos) << by_a.err;
}

INSTANTIATE_TEST_SUITE_P(RsaAndEccEk, ACredentialFromMakeCredential, ::testing::Values("rsa", "ecc"));

class AQuoteFromTheTpm : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(tpm_.create_keys("rsa", GetParam()));
    // A boot as firmware would log it, extended into the TPM for real.
    log_.add(0, ev::kSCrtmVersion, "firmware 1.0");
    log_.add(7, ev::kEfiVariableDriverConfig, "SecureBoot=1");
    log_.add(4, ev::kEfiBootServicesApplication, "shimx64.efi");
    for (unsigned pcr : {0u, 4u, 7u}) log_.add(pcr, ev::kSeparator, std::string(4, '\0'));
    auto parsed = parse_event_log(log_.bytes());
    ASSERT_TRUE(parsed);
    for (const auto& e : parsed->events)
      ASSERT_NO_FATAL_FAILURE(tpm_.must({"tpm2_pcrextend", std::to_string(e.pcr) + ":sha1=" + to_hex(e.digests[0].digest) +
                                                               ",sha256=" + to_hex(e.digests[1].digest)}));
    options_.nonce = Bytes(32, 0x51);
  }

  protocol::Evidence quote(const Bytes& nonce) {
    auto ev = tpm_.quote(nonce, "sha256:0,4,7");
    ev.event_log = log_.bytes();
    return ev;
  }

  Tpm tpm_;
  EventLogBuilder log_;
  VerifierOptions options_;
};

TEST_P(AQuoteFromTheTpm, VerifiesWithItsEventLogAndEkCertificate) {
  auto ev = quote(options_.nonce);
  TestCa ca;
  Bytes ek_pub = read_all(tpm_.file("ek.pub"));
  auto ek = parse_tpm_public(ek_pub);
  ASSERT_TRUE(ek);
  ev.ek_certificate = ca.issue_ek(ek->key.get());
  options_.ek_cas = *CaBundle::from_pem(ca.pem());
  options_.ek_public = ek_pub;
  options_.enrolled_ak_public = ev.ak_public;
  auto r = verify(ev, options_);
  EXPECT_TRUE(r.ok) << r.failures();
  EXPECT_TRUE(r.find("ek.chain") && r.find("ek.chain")->passed);
  EXPECT_TRUE(r.find("eventlog.replay") && r.find("eventlog.replay")->passed);

  // The same evidence against an untrusted manufacturer CA.
  TestCa other("untrusted manufacturer");
  options_.ek_cas = *CaBundle::from_pem(other.pem());
  expect_refused(verify(ev, options_), "ek.chain");
}

TEST_P(AQuoteFromTheTpm, IsRefusedWhenTampered) {
  auto ev = quote(options_.nonce);
  ev.quote_message[ev.quote_message.size() - 40] ^= 0x01;
  expect_refused(verify(ev, options_), "quote.signature");
}

TEST_P(AQuoteFromTheTpm, IsRefusedForAnotherNonce) {
  auto ev = quote(Bytes(32, 0x52));
  expect_refused(verify(ev, options_), "quote.nonce");
}

TEST_P(AQuoteFromTheTpm, IsRefusedWhenReplayedAfterALaterOne) {
  auto first = quote(options_.nonce);
  auto second = quote(options_.nonce);
  auto later = verify(second, options_);
  ASSERT_TRUE(later.ok) << later.failures();
  options_.last_clock = later.clock;
  expect_refused(verify(first, options_), "quote.clock", "replayed or stale evidence");
}

TEST_P(AQuoteFromTheTpm, IsRefusedAfterATpmResetIsRolledBack) {
  auto before = quote(options_.nonce);
  auto old = verify(before, options_);
  ASSERT_TRUE(old.clock);
  tpm_.swtpm_.restart();  // power cycle: resetCount grows
  options_.last_clock = old.clock;
  // Saved contexts do not survive a TPM Reset: the keys are made again (the EK is the same).
  ASSERT_NO_FATAL_FAILURE(tpm_.create_keys("rsa", GetParam()));
  // After the reset the PCRs are fresh; a quote of them passes the clock check.
  auto after = tpm_.quote(options_.nonce, "sha256:0,4,7");
  auto r = verify(after, options_);
  ASSERT_TRUE(r.find("quote.clock"));
  EXPECT_TRUE(r.find("quote.clock")->passed) << r.find("quote.clock")->reason;
  options_.last_clock = r.clock;
  expect_refused(verify(before, options_), "quote.clock", "replayed or stale evidence");
}

TEST_P(AQuoteFromTheTpm, IsRefusedWhenThePcrValuesDoNotMatchItsDigest) {
  auto ev = quote(options_.nonce);
  ev.pcrs[0].values[4] = Bytes(32, 0);
  expect_refused(verify(ev, options_), "quote.pcr_digest");
}

TEST_P(AQuoteFromTheTpm, IsRefusedWhenTheEventLogDoesNotReplayToIt) {
  auto ev = quote(options_.nonce);
  EventLogBuilder forged;  // claims Secure Boot was on when the TPM measured something else
  forged.add(0, ev::kSCrtmVersion, "firmware 1.0");
  forged.add(7, ev::kEfiVariableDriverConfig, "SecureBoot=1");
  forged.add(4, ev::kEfiBootServicesApplication, "grubx64.efi");
  for (unsigned pcr : {0u, 4u, 7u}) forged.add(pcr, ev::kSeparator, std::string(4, '\0'));
  ev.event_log = forged.bytes();
  expect_refused(verify(ev, options_), "eventlog.replay", "sha256:4");
}

TEST_P(AQuoteFromTheTpm, FromANonRestrictedKeyIsRefused) {
  ASSERT_NO_FATAL_FAILURE(tpm_.must({"tpm2_createprimary", "-C", "o", "-c", tpm_.f("primary.ctx")}));
  std::string g = std::string(GetParam()) == "ecc" ? "ecc:ecdsa-sha256" : "rsa:rsassa-sha256";
  ASSERT_NO_FATAL_FAILURE(tpm_.must({"tpm2_create", "-C", tpm_.f("primary.ctx"), "-G", g, "-a",
                                     "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign", "-u",
                                     tpm_.f("plain.pub"), "-r", tpm_.f("plain.priv")}));
  ASSERT_NO_FATAL_FAILURE(tpm_.must({"tpm2_load", "-C", tpm_.f("primary.ctx"), "-u", tpm_.f("plain.pub"), "-r",
                                     tpm_.f("plain.priv"), "-c", tpm_.f("plain.ctx")}));
  auto ev = tpm_.quote(options_.nonce, "sha256:0,4,7", "plain");
  auto r = verify(ev, options_);
  expect_refused(r, "ak.attributes", "restricted not set");
  EXPECT_TRUE(r.find("quote.signature")->passed);  // a real TPM signature, just not from an AK
}

INSTANTIATE_TEST_SUITE_P(EccAndRsaAk, AQuoteFromTheTpm, ::testing::Values("ecc", "rsa"));

}  // namespace
