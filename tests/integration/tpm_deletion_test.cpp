// Deletion counters against a private swtpm: objects bound to one with PolicyNV work while it
// holds their value, and once it has advanced no copy of them is usable again, with or without
// the binding, even after the counter is undefined and defined anew.
#include <gtest/gtest.h>

#include "protocol/pcr_policy.hpp"
#include "tests/support/policy_authority.hpp"
#include "tests/support/tpm_fixture.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;
using namespace mcimd::tpm;

namespace {

constexpr uint32_t kIndex = 0x01300042;
using Block = std::array<uint8_t, 16>;

class ADeletionCounter : public test::TpmContextTest {
 protected:
  void SetUp() override {
    TpmContextTest::SetUp();
    policy_ = test::approve(*ctx_, authority_.authority(), authority_.sign_current(*ctx_, {7}));
  }
  Bytes bound_policy(uint64_t value) const {
    const std::string_view ref = protocol::kPcrPolicyRef;
    return protocol::bound_policy_digest(authority_.authority().name,
                                         std::span(reinterpret_cast<const uint8_t*>(ref.data()), ref.size()),
                                         protocol::DeletionBinding{kIndex, value});
  }
  ApprovedPolicy with_binding(uint64_t value) const {
    ApprovedPolicy p = policy_;
    p.deletion = NvBinding{kIndex, value};
    return p;
  }
  Result<std::vector<Block>> encrypt(const KeyBlob& blob, const ApprovedPolicy& policy) {
    auto key = ctx_->load_aes_key(blob);
    if (!key) return tl::unexpected(key.error());
    const std::vector<Block> blocks(1, Block{});
    return key->encrypt_ecb(blocks, policy);
  }

  test::TestAuthority authority_;
  ApprovedPolicy policy_;
};

TEST_F(ADeletionCounter, IsDefinedOnceAndReadsTheSameValueAgain) {
  auto first = ctx_->deletion_counter_prepare(kIndex);
  ASSERT_TRUE(first) << first.error().describe();
  auto again = ctx_->deletion_counter_prepare(kIndex);
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(*again, *first);
  auto read = ctx_->deletion_counter_read(kIndex);
  ASSERT_TRUE(read);
  EXPECT_EQ(*read, *first);
  // Its name is the one every party computes from the template alone.
  auto pub = tools({"tpm2_nvreadpublic", "0x01300042"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_NE(pub.out.find(to_hex(protocol::deletion_counter_name(kIndex))), std::string::npos) << pub.out;
}

TEST_F(ADeletionCounter, RefusesAnIndexThatIsNotOne) {
  auto defined = tools({"tpm2_nvdefine", "0x01300043", "-s", "8", "-a", "ownerread|ownerwrite"});
  ASSERT_EQ(defined.exit_code, 0) << defined.err;
  auto refused = ctx_->deletion_counter_prepare(0x01300043);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::InvalidState) << refused.error().describe();
  EXPECT_EQ(ctx_->deletion_counter_read(0x01300044).error().code, Code::NotFound);
}

// The attack: a copy of K's blob taken while the profile lived, used after its deletion by
// someone with the TPM, the approved platform state and the authority's signed policy.
TEST_F(ADeletionCounter, MakesEveryCopyOfABoundObjectUnusableOnceAdvanced) {
  const uint64_t value = *ctx_->deletion_counter_prepare(kIndex);
  const Bytes k(16, 0x42);
  auto blob = ctx_->create_aes_key(k, SealOptions{bound_policy(value), /*no_da=*/true});
  ASSERT_TRUE(blob) << blob.error().describe();
  auto sealed = ctx_->seal(Bytes(16, 0x17), SealOptions{bound_policy(value), /*no_da=*/true});
  ASSERT_TRUE(sealed);

  auto works = encrypt(*blob, with_binding(value));
  ASSERT_TRUE(works) << works.error().describe();
  auto opc = ctx_->unseal(*sealed, with_binding(value));
  ASSERT_TRUE(opc) << opc.error().describe();
  // The binding is part of the policy: without PolicyNV the object refuses.
  EXPECT_FALSE(encrypt(*blob, policy_));

  auto advanced = ctx_->deletion_counter_advance(kIndex);
  ASSERT_TRUE(advanced);
  EXPECT_EQ(*advanced, value + 1);

  auto refused = encrypt(*blob, with_binding(value));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::NotAuthorized) << refused.error().describe();
  EXPECT_NE(refused.error().message.find("deleted"), std::string::npos) << refused.error().message;
  auto unseal_refused = ctx_->unseal(*sealed, with_binding(value));
  ASSERT_FALSE(unseal_refused);
  EXPECT_EQ(unseal_refused.error().code, Code::NotAuthorized);
  EXPECT_FALSE(encrypt(*blob, with_binding(value + 1))) << "the new value is not the one the object names";
  EXPECT_FALSE(encrypt(*blob, policy_));

  // Undefined and defined anew at the same handle with the same template (the name is the same
  // again): a counter starts above every value any counter of this TPM has held.
  auto undefined = tools({"tpm2_nvundefine", "0x01300042"});
  ASSERT_EQ(undefined.exit_code, 0) << undefined.err;
  auto gone = encrypt(*blob, with_binding(value));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Code::NotAuthorized) << gone.error().describe();
  auto redefined = ctx_->deletion_counter_prepare(kIndex);
  ASSERT_TRUE(redefined) << redefined.error().describe();
  EXPECT_GT(*redefined, value);
  EXPECT_FALSE(encrypt(*blob, with_binding(value)));
}

}  // namespace
