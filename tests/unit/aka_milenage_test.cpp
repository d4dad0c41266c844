// Milenage (TS 35.206) against the TS 35.208 conformance sets, through OpenSslAes and through a
// second cipher that answers each call with one batched EVP operation and enforces a call budget,
// as the TPM-held key does (one TPM2_EncryptDecrypt2 round trip per call).
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "aka/block_cipher.hpp"
#include "aka/milenage.hpp"
#include "aka/usim.hpp"
#include "common/bytes.hpp"
#include "common/c_handle.hpp"

using namespace mcimd;
using namespace mcimd::aka;

namespace {

template <std::size_t N>
std::array<uint8_t, N> hex_array(std::string_view hex) {
  auto bytes = from_hex(hex, "vector", N);
  if (!bytes) throw std::runtime_error(bytes.error().describe());
  std::array<uint8_t, N> out;
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

struct TestSet {
  std::string name;
  Block k, rand, op, opc;
  Sqn sqn;
  Amf amf;
  Mac mac_a, mac_s;
  Res res;
  Block ck, ik;
  Ak ak, ak_star;
  Autn autn;
};

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream ss(line);
  std::string field;
  while (std::getline(ss, field, ',')) fields.push_back(field);
  return fields;
}

// Columns: set,K,RAND,SQN,AMF,OP,OPc,f1_MAC-A,f1*_MAC-S,f2_RES,f3_CK,f4_IK,f5_AK,f5*_AKstar,AUTN_derived
std::vector<TestSet> load_sets() {
  std::ifstream in(std::string(MCIMD_VECTORS_DIR) + "/milenage-ts35208-sets-1-3-4.csv");
  std::vector<TestSet> sets;
  std::string line;
  if (!std::getline(in, line)) return sets;  // header
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto f = split_csv_line(line);
    if (f.size() != 15) throw std::runtime_error("malformed vector line: " + line);
    TestSet s;
    s.name = "Set" + f[0];
    s.k = hex_array<16>(f[1]);
    s.rand = hex_array<16>(f[2]);
    s.sqn = hex_array<6>(f[3]);
    s.amf = hex_array<2>(f[4]);
    s.op = hex_array<16>(f[5]);
    s.opc = hex_array<16>(f[6]);
    s.mac_a = hex_array<8>(f[7]);
    s.mac_s = hex_array<8>(f[8]);
    s.res = hex_array<8>(f[9]);
    s.ck = hex_array<16>(f[10]);
    s.ik = hex_array<16>(f[11]);
    s.ak = hex_array<6>(f[12]);
    s.ak_star = hex_array<6>(f[13]);
    s.autn = hex_array<16>(f[14]);
    sets.push_back(s);
  }
  return sets;
}

const std::vector<TestSet>& sets() {
  static const std::vector<TestSet> loaded = load_sets();
  return loaded;
}

std::vector<std::size_t> set_indices() {
  std::vector<std::size_t> indices(sets().size());
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = i;
  return indices;
}

using EvpCipher = CHandle<EVP_CIPHER, EVP_CIPHER_free>;
using EvpCipherCtx = CHandle<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;

// The second BlockCipher: all blocks of a call in one fetched-AES-128-ECB operation (like the
// TPM's single multi-block command), a record of the blocks per call, and a budget of calls after
// which it refuses like a failing TPM would.
class BatchAes final : public BlockCipher {
 public:
  explicit BatchAes(const Block& key, std::size_t max_calls = std::numeric_limits<std::size_t>::max())
      : key_(key), max_calls_(max_calls) {}

  Result<std::vector<Block>> encrypt(std::span<const Block> blocks) override {
    if (calls_.size() >= max_calls_) return fail(Code::TpmFailure, "call budget exhausted");
    calls_.push_back(blocks.size());
    EvpCipher aes(EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr));
    EvpCipherCtx ctx(EVP_CIPHER_CTX_new());
    if (!aes || !ctx) return fail(Code::Internal, "EVP setup");
    Bytes in, out(blocks.size() * 16 + 16);
    for (const auto& b : blocks) in.insert(in.end(), b.begin(), b.end());
    int n = 0, tail = 0;
    if (EVP_EncryptInit_ex2(ctx.get(), aes.get(), key_.data(), nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1 ||
        EVP_EncryptUpdate(ctx.get(), out.data(), &n, in.data(), static_cast<int>(in.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), out.data() + n, &tail) != 1)
      return fail(Code::Internal, "EVP encrypt");
    std::vector<Block> result(blocks.size());
    for (std::size_t i = 0; i < result.size(); ++i) std::copy_n(out.begin() + 16 * i, 16, result[i].begin());
    return result;
  }

  // Blocks per call, in call order.
  const std::vector<std::size_t>& calls() const { return calls_; }

 private:
  Block key_;
  std::size_t max_calls_;
  std::vector<std::size_t> calls_;
};

// A cipher that answers with one block too many: a broken backend must not be trusted.
class OverlongCipher final : public BlockCipher {
 public:
  Result<std::vector<Block>> encrypt(std::span<const Block> blocks) override {
    return std::vector<Block>(blocks.size() + 1);
  }
};

enum class CipherKind { OpenSsl, Batch };
void PrintTo(CipherKind kind, std::ostream* os) { *os << (kind == CipherKind::OpenSsl ? "OpenSslAes" : "BatchAes"); }

std::unique_ptr<BlockCipher> make_cipher(CipherKind kind, const Block& key) {
  if (kind == CipherKind::Batch) return std::make_unique<BatchAes>(key);
  auto aes = OpenSslAes::create(key);
  if (!aes) throw std::runtime_error(aes.error().describe());
  return std::make_unique<OpenSslAes>(std::move(*aes));
}

class MilenageConformance : public ::testing::TestWithParam<std::tuple<std::size_t, CipherKind>> {
 protected:
  const TestSet& set() const { return sets().at(std::get<0>(GetParam())); }
  std::unique_ptr<BlockCipher> cipher() const { return make_cipher(std::get<1>(GetParam()), set().k); }
};

std::string conformance_name(const ::testing::TestParamInfo<MilenageConformance::ParamType>& info) {
  return sets().at(std::get<0>(info.param)).name +
         (std::get<1>(info.param) == CipherKind::OpenSsl ? "WithOpenSslAes" : "WithBatchAes");
}

}  // namespace

TEST(TheMilenageVectorFile, HoldsTs35208SetsOneThreeAndFour) {
  ASSERT_EQ(sets().size(), 3u);
  EXPECT_EQ(sets()[0].name, "Set1");
  EXPECT_EQ(sets()[1].name, "Set3");
  EXPECT_EQ(sets()[2].name, "Set4");
}

TEST_P(MilenageConformance, DerivesOpcFromOp) {
  auto k = cipher();
  auto opc = compute_opc(*k, set().op);
  ASSERT_TRUE(opc) << opc.error().describe();
  EXPECT_EQ(to_hex(*opc), to_hex(set().opc));
}

TEST_P(MilenageConformance, YieldsEveryFunctionOutput) {
  auto k = cipher();
  auto out = milenage(*k, set().opc, set().rand, set().sqn, set().amf);
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(to_hex(out->mac_a), to_hex(set().mac_a));
  EXPECT_EQ(to_hex(out->mac_s), to_hex(set().mac_s));
  EXPECT_EQ(to_hex(out->res), to_hex(set().res));
  EXPECT_EQ(to_hex(out->ck), to_hex(set().ck));
  EXPECT_EQ(to_hex(out->ik), to_hex(set().ik));
  EXPECT_EQ(to_hex(out->ak), to_hex(set().ak));
  EXPECT_EQ(to_hex(out->ak_star), to_hex(set().ak_star));
}

TEST_P(MilenageConformance, YieldsTheSameOutputsWithOpcDerivedFromOp) {
  auto k = cipher();
  auto opc = compute_opc(*k, set().op);
  ASSERT_TRUE(opc);
  auto out = milenage(*k, *opc, set().rand, set().sqn, set().amf);
  ASSERT_TRUE(out);
  EXPECT_EQ(to_hex(out->mac_a), to_hex(set().mac_a));
  EXPECT_EQ(to_hex(out->res), to_hex(set().res));
  EXPECT_EQ(to_hex(out->ak_star), to_hex(set().ak_star));
}

TEST_P(MilenageConformance, BuildsTheAuthenticationVectorWithAutn) {
  auto k = cipher();
  auto v = generate_vector(*k, set().opc, set().rand, set().sqn, set().amf);
  ASSERT_TRUE(v) << v.error().describe();
  EXPECT_EQ(to_hex(v->rand), to_hex(set().rand));
  EXPECT_EQ(to_hex(v->xres), to_hex(set().res));
  EXPECT_EQ(to_hex(v->ck), to_hex(set().ck));
  EXPECT_EQ(to_hex(v->ik), to_hex(set().ik));
  EXPECT_EQ(to_hex(v->autn), to_hex(set().autn));
}

TEST_P(MilenageConformance, RecoversSqnMsFromAutsBuiltWithAmfStarZero) {
  auto k = cipher();
  // AUTS for SQN_MS = the set's SQN: MAC-S = f1*(SQN_MS, RAND, AMF* = 0x0000), concealed with AK*.
  auto out = milenage(*k, set().opc, set().rand, set().sqn, Amf{0, 0});
  ASSERT_TRUE(out);
  Auts auts;
  for (std::size_t i = 0; i < 6; ++i) auts[i] = set().sqn[i] ^ set().ak_star[i];
  std::copy(out->mac_s.begin(), out->mac_s.end(), auts.begin() + 6);
  auto sqn_ms = verify_auts(*k, set().opc, set().rand, auts);
  ASSERT_TRUE(sqn_ms) << sqn_ms.error().describe();
  EXPECT_EQ(to_hex(*sqn_ms), to_hex(set().sqn));
}

TEST_P(MilenageConformance, RefusesAutsWhoseMacSWasComputedWithTheRealAmf) {
  auto k = cipher();
  Auts auts;
  for (std::size_t i = 0; i < 6; ++i) auts[i] = set().sqn[i] ^ set().ak_star[i];
  std::copy(set().mac_s.begin(), set().mac_s.end(), auts.begin() + 6);  // f1* with the set's AMF ≠ 0
  auto sqn_ms = verify_auts(*k, set().opc, set().rand, auts);
  ASSERT_FALSE(sqn_ms);
  EXPECT_EQ(sqn_ms.error().code, Code::MacFailure);
}

TEST_P(MilenageConformance, ConvertsToGsmLikeTheHandComputedTriplet) {
  // SRES = RES[0..3] ⊕ RES[4..7] and Kc = CK1 ⊕ CK2 ⊕ IK1 ⊕ IK2 worked out by hand from the
  // RES/CK/IK columns (TS 33.102 §6.8.1.2 c2, c3).
  static const std::map<std::string, std::pair<std::string, std::string>> expected = {
      {"Set1", {"46f8416a", "eae4be823af9a08b"}},
      {"Set3", {"8c308a5e", "aa01739b8caa976d"}},
      {"Set4", {"cfbce3fe", "9a8ec95f408cc507"}},
  };
  const auto& [sres, kc] = expected.at(set().name);
  auto converted = gsm_convert(set().res, set().ck, set().ik);
  EXPECT_EQ(to_hex(converted.sres), sres);
  EXPECT_EQ(to_hex(converted.kc), kc);

  auto k = cipher();
  auto triplet = gsm_authenticate(*k, set().opc, set().rand);
  ASSERT_TRUE(triplet) << triplet.error().describe();
  EXPECT_EQ(to_hex(triplet->sres), sres);
  EXPECT_EQ(to_hex(triplet->kc), kc);
}

INSTANTIATE_TEST_SUITE_P(Ts35208, MilenageConformance,
                         ::testing::Combine(::testing::ValuesIn(set_indices()),
                                            ::testing::Values(CipherKind::OpenSsl, CipherKind::Batch)),
                         conformance_name);

TEST(AMilenageNetworkSide, UsesTwoCipherCallsTempThenFiveBlocks) {
  const auto& s = sets().at(0);
  BatchAes k(s.k, /*max_calls=*/2);
  ASSERT_TRUE(milenage(k, s.opc, s.rand, s.sqn, s.amf));
  EXPECT_EQ(k.calls(), (std::vector<std::size_t>{1, 5}));

  BatchAes v(s.k, /*max_calls=*/2);
  ASSERT_TRUE(generate_vector(v, s.opc, s.rand, s.sqn, s.amf));
  EXPECT_EQ(v.calls(), (std::vector<std::size_t>{1, 5}));

  auto aes = OpenSslAes::create(s.k);
  ASSERT_TRUE(aes);
  ASSERT_TRUE(generate_vector(*aes, s.opc, s.rand, s.sqn, s.amf));
  EXPECT_EQ(aes->calls(), 2u);
}

TEST(AMilenageOpcDerivation, UsesOneCipherCall) {
  const auto& s = sets().at(0);
  BatchAes k(s.k, /*max_calls=*/1);
  ASSERT_TRUE(compute_opc(k, s.op));
  EXPECT_EQ(k.calls(), (std::vector<std::size_t>{1}));
}

TEST(AMilenageAutsCheck, UsesThreeSingleBlockCallsBecauseAkStarHidesSqnMs) {
  const auto& s = sets().at(0);
  BatchAes k(s.k, /*max_calls=*/3);
  Auts auts{};
  auto r = verify_auts(k, s.opc, s.rand, auts);
  ASSERT_FALSE(r);
  // The MAC check refused it, not the budget: a fourth call would have been a TpmFailure.
  EXPECT_EQ(r.error().code, Code::MacFailure) << r.error().describe();
  EXPECT_EQ(k.calls(), (std::vector<std::size_t>{1, 1, 1}));
}

TEST(AGsmMilenageRun, UsesTwoCipherCallsTempThenThreeBlocks) {
  const auto& s = sets().at(0);
  BatchAes k(s.k, /*max_calls=*/2);
  ASSERT_TRUE(gsm_authenticate(k, s.opc, s.rand));
  EXPECT_EQ(k.calls(), (std::vector<std::size_t>{1, 3}));
}

TEST(AMilenageNetworkSide, PassesOnTheCipherFailure) {
  const auto& s = sets().at(0);
  BatchAes k(s.k, /*max_calls=*/1);
  auto out = milenage(k, s.opc, s.rand, s.sqn, s.amf);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Code::TpmFailure);
}

TEST(AMilenageNetworkSide, RefusesACipherThatAnswersTheWrongNumberOfBlocks) {
  const auto& s = sets().at(0);
  OverlongCipher k;
  auto out = milenage(k, s.opc, s.rand, s.sqn, s.amf);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Code::Internal);
  EXPECT_FALSE(compute_opc(k, s.op));
  EXPECT_FALSE(gsm_authenticate(k, s.opc, s.rand));
}

TEST(AnOpenSslAesForMilenage, RefusesAKeyThatIsNot16Bytes) {
  auto short_key = OpenSslAes::create(Bytes(15, 0));
  ASSERT_FALSE(short_key);
  EXPECT_EQ(short_key.error().code, Code::InvalidArgument);
  EXPECT_FALSE(OpenSslAes::create(Bytes(32, 0)));
}

TEST(AnOpenSslAesForMilenage, MatchesFips197AndCountsCalls) {
  // FIPS 197 Appendix C.1 (AES-128): key 000102..0f, plaintext 00112233..ff.
  auto aes = OpenSslAes::create(hex_array<16>("000102030405060708090a0b0c0d0e0f"));
  ASSERT_TRUE(aes);
  const Block plain = hex_array<16>("00112233445566778899aabbccddeeff");
  const Block blocks[2] = {plain, plain};
  auto out = aes->encrypt(blocks);
  ASSERT_TRUE(out);
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ(to_hex((*out)[0]), "69c4e0d86a7b0430d8cdb78070b4c55a");
  EXPECT_EQ((*out)[1], (*out)[0]) << "ECB: equal blocks, equal output";
  auto none = aes->encrypt({});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(aes->calls(), 2u);
}
