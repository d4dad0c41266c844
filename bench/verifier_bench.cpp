// Platform validation throughput (Google Benchmark): a complete attestation::verify of one
// evidence document against the bare ECDSA P-256 verification of the same quote, measured in the
// same run. Both report items_per_second, so their ratio is what the checks beyond the
// signature (EK chain, PCR digest, event log replay, policy) cost.
//
// The evidence is made in software the way a TPM makes it: an ECC P-256 AK, all 24 SHA-256 PCRs
// quoted, a small firmware event log extending PCRs 0, 1, 2, 4 and 7, an EK certificate from a
// manufacturer CA, and a reference policy over PCRs 0..7.
#include <benchmark/benchmark.h>
#include <openssl/ecdsa.h>

#include <string>

#include "attestation/verifier.hpp"
#include "protocol/evidence.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;

namespace {

// PC Client Platform TPM Profile §4.6: 24 PCRs per bank.
constexpr unsigned kPcrCount = 24;

struct Setup {
  TestCa ca;
  EvpPkey ek = ec_key();
  EvpPkey ak = ec_key();
  protocol::Evidence evidence;
  std::string evidence_json;
  VerifierOptions options;
  EvpPkey ak_verify_key;  // the AK's public key only, as the verifier holds it
  Bytes der_signature;    // the quote's ECDSA signature in the DER form OpenSSL verifies

  Setup() {
    EventLogBuilder log({alg::kSha256});
    log.add(0, ev::kSCrtmVersion, "firmware 1.0");
    log.add(0, ev::kEfiPlatformFirmwareBlob, "platform firmware volume");
    log.add_variable(1, ev::kEfiVariableBoot, kEfiGlobalVariable, "BootOrder", {0x01, 0x00});
    log.add(2, ev::kEfiBootServicesDriver, "option rom");
    log.add_variable(7, ev::kEfiVariableDriverConfig, kEfiGlobalVariable, "SecureBoot", {1});
    log.add_variable(7, ev::kEfiVariableDriverConfig, kEfiGlobalVariable, "PK", Bytes(800, 0x50));
    const auto shim = log.add_application("\\EFI\\BOOT\\BOOTX64.EFI", "shim image");
    const auto grub = log.add_application("\\EFI\\BOOT\\grubx64.efi", "grub image");
    for (uint32_t pcr : {0u, 1u, 2u, 4u, 7u}) log.add(pcr, ev::kSeparator, std::string(4, '\0'));
    auto replayed = replay_event_log(*parse_event_log(log.bytes()))->pcrs[alg::kSha256];

    std::map<unsigned, Bytes> pcrs;
    std::vector<unsigned> all;
    for (unsigned i = 0; i < kPcrCount; ++i) {
      all.push_back(i);
      // PCRs 17..22 start at all ones (PC Client PTP §4.6, DRTM); the others at zero.
      pcrs[i] = replayed.count(i) ? replayed[i] : Bytes(32, i >= 17 && i <= 22 ? 0xFF : 0x00);
    }
    Bytes concat;
    for (const auto& [i, value] : pcrs) concat.insert(concat.end(), value.begin(), value.end());

    const Bytes nonce(32, 0x5A);
    QuoteSpec q;
    q.nonce = evidence_qualifying_data(nonce);
    q.selection = {{alg::kSha256, all}};
    q.pcr_digest = sha(alg::kSha256, concat);
    evidence.nonce = nonce;
    evidence.quote_message = attest_message(q);
    evidence.quote_signature = tpm_sign(ak.get(), evidence.quote_message);
    evidence.pcrs = {{"sha256", pcrs}};
    evidence.ak_public = tpm_public(ak.get(), kAkAttributes);
    evidence.ek_certificate = ca.issue_ek(ek.get());
    evidence.event_log = log.bytes();
    evidence_json = protocol::to_json(evidence);

    const std::string policy = "required_pcrs:\n  sha256: [0, 1, 2, 3, 4, 5, 6, 7]\n"
                               "pcrs:\n  sha256:\n"
                               "    0: [\"" + to_hex(pcrs[0]) + "\"]\n"
                               "    4: [\"" + to_hex(pcrs[4]) + "\"]\n"
                               "    7: [\"" + to_hex(pcrs[7]) + "\"]\n"
                               "variables:\n  - guid: 8be4df61-93ca-11d2-aa0d-00e098032b8c\n"
                               "    name: SecureBoot\n    values: [\"01\"]\n"
                               "applications:\n  - sha256: [\"" +
                               to_hex(shim[0]) + "\", \"" + to_hex(grub[0]) + "\"]\n"
                               "require_event_log: true\n";
    options.nonce = nonce;
    options.ek_cas = *CaBundle::from_pem(ca.pem());
    options.ek_public = tpm_public(ek.get(), kEkAttributes);
    options.enrolled_ak_public = evidence.ak_public;
    options.policy = *parse_policy(policy);
    options.last_clock = ClockInfo{q.clock - 1, q.reset_count, q.restart_count, true};

    ak_verify_key = std::move(parse_tpm_public(evidence.ak_public)->key);
    // TPMT_SIGNATURE (Part 2 §11.3.4): sigAlg, hash, then R and S as TPM2B_ECC_PARAMETER.
    TPMT_SIGNATURE sig{};
    std::size_t off = 0;
    Tss2_MU_TPMT_SIGNATURE_Unmarshal(evidence.quote_signature.data(), evidence.quote_signature.size(), &off, &sig);
    ECDSA_SIG* es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(sig.signature.ecdsa.signatureR.buffer, sig.signature.ecdsa.signatureR.size, nullptr),
                   BN_bin2bn(sig.signature.ecdsa.signatureS.buffer, sig.signature.ecdsa.signatureS.size, nullptr));
    unsigned char* der = nullptr;
    const int len = i2d_ECDSA_SIG(es, &der);
    der_signature.assign(der, der + len);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
  }
};

const Setup& setup() {
  static const Setup s;
  return s;
}

bool ecdsa_verify(const Setup& s) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, s.ak_verify_key.get()) == 1 &&
                  EVP_DigestVerify(ctx, s.der_signature.data(), s.der_signature.size(), s.evidence.quote_message.data(),
                                   s.evidence.quote_message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

// Every check of attestation::verify over the parsed document.
void BM_VerifyEvidence(benchmark::State& state) {
  const Setup& s = setup();
  if (auto r = verify(s.evidence, s.options); !r.ok) {
    state.SkipWithError(("the evidence does not verify: " + r.failures()).c_str());
    return;
  }
  for (auto _ : state) {
    auto r = verify(s.evidence, s.options);
    benchmark::DoNotOptimize(r.ok);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyEvidence);

// What an operator does per request: parse the JSON document, then verify it.
void BM_ParseAndVerifyEvidence(benchmark::State& state) {
  const Setup& s = setup();
  state.counters["document_bytes"] = static_cast<double>(s.evidence_json.size());
  for (auto _ : state) {
    auto ev = protocol::evidence_from_json(s.evidence_json);
    if (!ev) {
      state.SkipWithError(ev.error().message.c_str());
      return;
    }
    auto r = verify(*ev, s.options);
    benchmark::DoNotOptimize(r.ok);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseAndVerifyEvidence);

// The baseline: the quote's signature alone, with OpenSSL's ECDSA P-256 over the same message.
void BM_OpenSslEcdsaP256VerifyQuote(benchmark::State& state) {
  const Setup& s = setup();
  if (!ecdsa_verify(s)) {
    state.SkipWithError("the quote signature does not verify with OpenSSL");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(ecdsa_verify(s));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OpenSslEcdsaP256VerifyQuote);

}  // namespace
