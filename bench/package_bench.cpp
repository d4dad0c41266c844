// MCIM package building throughput (Google Benchmark): op::build_package — K and OPc each
// wrapped as a TPM2 duplication blob for an ECC P-256 SRK (ephemeral ECDH, KDFe, KDFa, AES-CFB,
// HMAC), the header to JSON, ES256 JWS — against the raw OpenSSL public-key operations every
// package needs, measured in the same run: two ephemeral P-256 key generations and ECDH
// derivations, and one ECDSA P-256 signature over a payload of the package's size. Both report
// items_per_second on one thread; their ratio is what the rest (marshalling, symmetric crypto,
// JSON, base64url) costs. Goal: building runs at at least half the raw rate.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "operator/package_builder.hpp"
#include "operator/policy_signing.hpp"
#include "protocol/pcr_policy.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

using namespace mcimd;
using namespace mcimd::test::verifier;

namespace {

struct Setup {
  EvpPkey srk = ec_key();
  protocol::PackageRequest request;
  op::McimCredentials mcim;
  op::PackageOrder order;
  op::PolicySigner signer;
  std::size_t payload_size = 0;

  Setup() {
    request.device = "000b" + std::string(64, '1');
    request.device_nonce = Bytes(32, 0x42);
    request.srk_public = tpm_public(srk.get(), kEkAttributes);
    EvpPkey authority_key = ec_key();
    auto authority = protocol::policy_authority_from_pem(pem_public(authority_key.get()));
    if (!authority) std::abort();
    request.authority = authority->public_area;
    mcim.iccid = "8949001234567890123";
    mcim.imsi = "001010123456789";
    mcim.k.assign(16, 0x11);
    mcim.opc.assign(16, 0x22);
    order.package_id = "bench";
    order.operator_id = "00101";
    order.counter = 1;
    order.issued = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());

    auto creds = op::make_policy_signing_certificate({"bench package signer", 30});
    if (!creds) std::abort();
    const auto dir = std::filesystem::temp_directory_path() / ("mcimd-package-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "key.pem") << std::string(creds->key_pem.begin(), creds->key_pem.end());
    std::ofstream(dir / "cert.pem") << creds->certificate_pem;
    auto s = op::load_policy_signer({dir / "key.pem", dir / "cert.pem", {}});
    std::filesystem::remove_all(dir);
    if (!s) std::abort();
    signer = std::move(*s);
    auto built = op::build_package(request, mcim, order, signer);
    if (!built) std::abort();
    payload_size = built->jws.size();
  }

  static std::string pem_public(EVP_PKEY* key) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return out;
  }
};

Setup& setup() {
  static Setup s;
  return s;
}

void BM_BuildPackage(benchmark::State& state) {
  auto& s = setup();
  for (auto _ : state) {
    auto built = op::build_package(s.request, s.mcim, s.order, s.signer);
    if (!built) state.SkipWithError(built.error().message.c_str());
    benchmark::DoNotOptimize(built);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["jws_bytes"] = static_cast<double>(s.payload_size);
}

// The public-key work of one package, nothing else.
void BM_RawOpenSslOperations(benchmark::State& state) {
  auto& s = setup();
  const std::string payload(s.payload_size, 'x');
  EVP_PKEY* sign_key = s.signer.key.get();
  for (auto _ : state) {
    for (int blob = 0; blob < 2; ++blob) {
      EvpPkey eph(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
      EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(eph.get(), nullptr);
      EVP_PKEY_derive_init(ctx);
      EVP_PKEY_derive_set_peer(ctx, s.srk.get());
      uint8_t z[32];
      size_t zlen = sizeof z;
      EVP_PKEY_derive(ctx, z, &zlen);
      EVP_PKEY_CTX_free(ctx);
      benchmark::DoNotOptimize(z);
    }
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, sign_key);
    uint8_t sig[80];
    size_t siglen = sizeof sig;
    EVP_DigestSign(md, sig, &siglen, reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
    EVP_MD_CTX_free(md);
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_BuildPackage)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RawOpenSslOperations)->Unit(benchmark::kMicrosecond);
