// Software Milenage primitives (Google Benchmark): the baseline the TPM path is compared to.
#include <benchmark/benchmark.h>

#include "aka/usim.hpp"

using namespace mcimd;
using namespace mcimd::aka;

namespace {

// TS 35.208 test set 1.
const Block kK = {0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc};
const Block kOpc = {0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf};
const Rand kRand = {0x23, 0x55, 0x3c, 0xbe, 0x96, 0x37, 0xa8, 0x9d, 0x21, 0x8a, 0xe6, 0x4d, 0xae, 0x47, 0xbf, 0x35};

void BM_NetworkVector(benchmark::State& state) {
  auto k = OpenSslAes::create(kK).value();
  Sqn sqn = sqn_from_u64(0x20);
  for (auto _ : state) benchmark::DoNotOptimize(generate_vector(k, kOpc, kRand, sqn, Amf{0x80, 0x00}));
}
BENCHMARK(BM_NetworkVector);

void BM_UsimAuthenticate(benchmark::State& state) {
  auto k = OpenSslAes::create(kK).value();
  auto vector = generate_vector(k, kOpc, kRand, sqn_from_u64(0x40), Amf{0x80, 0x00}).value();
  auto fresh = SqnArray::create(SqnParameters{}).value();
  for (auto _ : state) {
    auto sqns = fresh;
    benchmark::DoNotOptimize(usim_authenticate(k, kOpc, sqns, kRand, vector.autn));
  }
}
BENCHMARK(BM_UsimAuthenticate);

}  // namespace
