// The IMA measurement list: template hashes of every template a kernel writes (checked against
// lines real kernels produced), the quoted prefix replayed into PCR 10 with entries appended
// after the quote allowed, and the boot_aggregate tied to the quoted boot PCRs.
#include <gtest/gtest.h>

#include "attestation/ima.hpp"
#include "attestation/log_checks.hpp"
#include "attestation/verifier.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;

namespace {

// Lines recorded from Linux kernels, as published in Keylime's IMA parser test data
// (keylime/test/test_ima_ast.py, Apache-2.0): one per template, their template hashes as the
// kernel computed them.
const char* const kKernelLines[] = {
    "10 d7026dc672344d3ee372217bdbc7395947788671 ima 6f66d1d8e2fffcc12dfcb78c04b81fe5b8bbae4e /usr/bin/kmod",
    "10 7936eb315fb4e74b99e7d461bc5c96049e1ee092 ima-ng sha1:bc026ae66d81713e4e852465e980784dc96651f8 "
    "/usr/lib/systemd/systemd",
    "10 50873c47693cf9458e87eb4a02dd4f594f7a0c0f ima-sig sha1:1350320e5f7f51553bac8aa403489a1b135bc101 /usr/bin/dd "
    "030202f3452d23010084c2a6cf7de1aeefa119220df0da265a7c44d34380f0d97002e7c778d09cfcf88c018e6595df3ee70eda926851f"
    "159332f852e7981a8fca1bc5e959958d06d234a0896861f13cc60da825905c8ed234df26c1deecfa816d5aa9bfb11b905e2814084a86b5"
    "88be60423afada8dd0dd5a143774c6d890b64195ac42fb47ef5a9a00f0d6c80711d8e0c2b843ec38c02f60fd46bc46c7b4c329ad2dbb1b"
    "7625293703f9c739dc4c2bf0769126a2f3cb2cd031d1881cd0af64bf20fd474a993b48620f103a5c14999a2f17d60721bcc019a896b413"
    "8a688a59f50cb6cd94a4cfe3b8052e82dec025fef4feabb08c7ce412e3de850f903797e293ec27c329f57fd84e0",
    "10 06e804489a77ddab51b9ef27e17053c0e5d503bd ima-sig sha1:1cb84b12db45d7da8de58ba6744187db84082f0e /usr/bin/zmore "
    "030202531f402500483046022100bff9c02dc7b270c83cc94bfec10eecd42831de2cdcb04f024369a14623bc3a91022100cc4d015ae932"
    "fb98d6846645ed7d1bb1afd4621ec9089bc087126f191886dd31",
    // No signature: the kernel still prints the field's separating space.
    "10 5426cf3031a43f5bfca183d79950698a95a728f6 ima-sig "
    "sha256:f1125b940480d20ad841d26d5ea253edc0704b5ec1548c891edf212cb1a9365e "
    "/lib/modules/5.4.48-openpower1/kernel/drivers/usb/common/usb-common.ko ",
    "10 b7862dbbf1383ac6c7cca7f02d981a081aacb1f1 ima-buf sha1:6e0e6fc8a188ef4f059638949adca4d221946906 device_resume "
    "6e616d653d544553543b757569643d43525950542d5645524954592d39656633326535623635623034343234613561386562343436636630"
    "653731332d544553543b63617061636974793d303b6d616a6f723d3235333b6d696e6f723d303b6d696e6f725f636f756e743d313b6e75"
    "6d5f746172676574733d313b6163746976655f7461626c655f686173683d34656538306533336535363564333633343035663430323839"
    "3436653837623365396563306335383661666639656630656436663561653762656237326431333b",
};

TEST(AnImaLogFromARealKernel, HasEveryTemplateHashMatchItsFields) {
  for (const char* line : kKernelLines) {
    auto entries = parse_ima_log(std::string(line) + "\n");
    ASSERT_TRUE(entries) << line << ": " << entries.error().describe();
    ASSERT_EQ(entries->size(), 1u);
    const ImaEntry& e = entries->front();
    auto h = ima_template_hash(e, alg::kSha1);
    ASSERT_TRUE(h) << e.template_name;
    EXPECT_EQ(to_hex(*h), to_hex(e.template_hash)) << line;
  }
  // The signature is part of what ima-sig's template hash covers.
  std::string forged = kKernelLines[3];
  forged.back() = forged.back() == '1' ? '2' : '1';
  auto e = parse_ima_log(forged + "\n");
  ASSERT_TRUE(e);
  EXPECT_NE(*ima_template_hash(e->front(), alg::kSha1), e->front().template_hash);
}

TEST(AnImaLog, WithAMalformedLineNamesTheLine) {
  auto r = parse_ima_log("10 abc ima-ng sha1:00 x\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line 1"), std::string::npos);
  r = parse_ima_log("10 " + std::string(40, 'a') + " ima-ng\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("fewer than five fields"), std::string::npos);
  r = parse_ima_log("\n10 " + std::string(40, 'a') + " ima-sig sha256:00 /bin/x zz\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos) << r.error().message;
}

// An ima-ng entry built here, its template hash computed from the d-ng and n-ng fields.
std::string ng_line(const std::string& alg, const Bytes& file_hash, const std::string& name) {
  Bytes data;
  Bytes dng(alg.begin(), alg.end());
  dng.push_back(':');
  dng.push_back(0);
  dng.insert(dng.end(), file_hash.begin(), file_hash.end());
  EventLogBuilder::put32(data, uint32_t(dng.size()));
  data.insert(data.end(), dng.begin(), dng.end());
  EventLogBuilder::put32(data, uint32_t(name.size() + 1));
  data.insert(data.end(), name.begin(), name.end());
  data.push_back(0);
  return "10 " + to_hex(sha(alg::kSha1, data)) + " ima-ng " + alg + ":" + to_hex(file_hash) + " " + name + "\n";
}

// Boot PCRs 0–9 of a platform, and an IMA list for it: boot_aggregate first, then files.
class AnImaList : public ::testing::Test {
 protected:
  void SetUp() override {
    for (unsigned pcr = 0; pcr < 10; ++pcr) {
      quoted_[alg::kSha1][pcr] = Bytes(20, uint8_t(0x10 + pcr));
      quoted_[alg::kSha256][pcr] = Bytes(32, uint8_t(0x20 + pcr));
    }
  }
  // sha256 boot_aggregate over sha256 PCRs 0–9 (kernels 5.8+).
  std::string aggregate_line() {
    Bytes in;
    for (unsigned pcr = 0; pcr < 10; ++pcr) in.insert(in.end(), quoted_[alg::kSha256][pcr].begin(), quoted_[alg::kSha256][pcr].end());
    return ng_line("sha256", sha(alg::kSha256, in), "boot_aggregate");
  }
  std::vector<ImaEntry> entries(const std::string& text) {
    auto e = parse_ima_log(text);
    EXPECT_TRUE(e) << e.error().describe();
    return e ? *e : std::vector<ImaEntry>{};
  }
  // PCR 10 of `bank` after the first n entries, extended as kernels 5.8+ do.
  Bytes pcr10(const std::vector<ImaEntry>& list, std::size_t n, uint16_t bank) {
    Bytes pcr(hash_size(bank), 0);
    for (std::size_t i = 0; i < n; ++i)
      pcr = extend(bank, pcr, list[i].violation() ? Bytes(hash_size(bank), 0xFF)
                                                  : bank == alg::kSha1 ? list[i].template_hash
                                                                       : sha(bank, *ima_template_data(list[i])));
    return pcr;
  }
  PcrValues quoted_;
};

TEST_F(AnImaList, VerifiesTheQuotedPrefixAndLeavesLaterEntriesUnverified) {
  const std::string text = aggregate_line() + ng_line("sha256", Bytes(32, 0xAA), "/usr/bin/a") +
                           ng_line("sha256", Bytes(32, 0xBB), "/usr/bin/later");
  auto list = entries(text);
  quoted_[alg::kSha1][10] = pcr10(list, 2, alg::kSha1);
  quoted_[alg::kSha256][10] = pcr10(list, 2, alg::kSha256);
  auto r = check_ima_replay(list, quoted_);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->quoted_entries, 2u);
  EXPECT_EQ(r->appended_entries, 1u);
  EXPECT_NE(r->detail.find("sha256:10 (per-bank template digests)"), std::string::npos) << r->detail;
  EXPECT_TRUE(check_ima_boot_aggregate(list, quoted_));

  // An entry inside the quoted prefix that does not match its template hash is caught.
  std::string renamed = text;
  renamed.replace(renamed.find("/usr/bin/a"), 10, "/usr/bin/b");
  quoted_[alg::kSha256].erase(10);  // the sha1 bank extends the listed template hashes as they are
  auto bad = check_ima_replay(entries(renamed), quoted_);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("template hash does not match"), std::string::npos) << bad.error().message;
}

TEST_F(AnImaList, IsRefusedWhenNoPrefixReplaysToTheQuote) {
  auto list = entries(aggregate_line() + ng_line("sha256", Bytes(32, 0xAA), "/usr/bin/a"));
  quoted_[alg::kSha256][10] = Bytes(32, 0x77);
  auto r = check_ima_replay(list, quoted_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("sha256:10"), std::string::npos) << r.error().message;
  // Without PCR 10 in the quote nothing can be verified.
  quoted_[alg::kSha256].erase(10);
  auto unquoted = check_ima_replay(list, quoted_);
  ASSERT_FALSE(unquoted);
  EXPECT_NE(unquoted.error().message.find("PCR 10 is not quoted"), std::string::npos) << unquoted.error().message;
}

TEST_F(AnImaList, ReplaysOlderKernelsPaddedDigestsAndViolations) {
  auto list = entries(aggregate_line() + "10 " + std::string(40, '0') + " ima-ng sha256:" + std::string(64, '0') +
                      " /violated\n");
  // Before 5.8 every bank got the SHA-1 template hash (a violation: 20 bytes of ones), zero-padded.
  Bytes pcr(32, 0);
  Bytes first = list[0].template_hash, violation(20, 0xFF);
  first.resize(32, 0);
  violation.resize(32, 0);
  pcr = extend(alg::kSha256, extend(alg::kSha256, pcr, first), violation);
  quoted_[alg::kSha256][10] = pcr;
  auto r = check_ima_replay(list, quoted_);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_NE(r->detail.find("padded SHA-1 template hashes"), std::string::npos) << r->detail;
}

TEST_F(AnImaList, RefusesATemplateItCannotVerifyInTheQuotedPrefix) {
  auto list = entries(aggregate_line() + "10 " + std::string(40, 'c') + " ima-modsig sha256:" + std::string(64, '1') +
                      " /lib/modules/x.ko 00 11\n");
  quoted_[alg::kSha1][10] = extend(alg::kSha1, extend(alg::kSha1, Bytes(20, 0), list[0].template_hash),
                                   list[1].template_hash);
  auto r = check_ima_replay(list, quoted_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("template \"ima-modsig\" cannot be verified"), std::string::npos)
      << r.error().message;
}

TEST_F(AnImaList, TiesItsBootAggregateToTheQuotedBootPcrs) {
  auto list = entries(aggregate_line());
  EXPECT_TRUE(check_ima_boot_aggregate(list, quoted_));
  // Another PCR 9 (another kernel booted) breaks it.
  auto other = quoted_;
  other[alg::kSha256][9] = Bytes(32, 0x99);
  auto r = check_ima_boot_aggregate(list, other);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("is not the hash of the quoted PCRs"), std::string::npos) << r.error().message;
  // PCRs it needs that were not quoted.
  other = quoted_;
  other[alg::kSha256].erase(8);
  r = check_ima_boot_aggregate(list, other);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("sha256:8 are not quoted"), std::string::npos) << r.error().message;
  // A SHA-1 boot_aggregate covers sha1 PCRs 0–7 only.
  Bytes in;
  for (unsigned pcr = 0; pcr < 8; ++pcr) in.insert(in.end(), quoted_[alg::kSha1][pcr].begin(), quoted_[alg::kSha1][pcr].end());
  EXPECT_TRUE(check_ima_boot_aggregate(entries(ng_line("sha1", sha(alg::kSha1, in), "boot_aggregate")), quoted_));
  // Not first in the list: refused.
  auto late = entries(ng_line("sha256", Bytes(32, 1), "/init") + aggregate_line());
  r = check_ima_boot_aggregate(late, quoted_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("does not start with"), std::string::npos);
}

TEST_F(AnImaList, IsVerifiedEndToEndWithTheQuote) {
  const std::string text = aggregate_line() + ng_line("sha256", Bytes(32, 0xAB), "/bin/ls");
  auto list = entries(text);
  std::map<unsigned, Bytes> pcrs = quoted_[alg::kSha256];
  pcrs[10] = pcr10(list, 2, alg::kSha256);
  auto ak = ec_key();
  auto ev = signed_evidence(ak.get(), Bytes(16, 1), alg::kSha256, pcrs);
  ev.ima_log = text;
  VerifierOptions o;
  o.nonce = ev.nonce;
  auto r = verify(ev, o);
  EXPECT_TRUE(r.ok) << r.failures();
  ASSERT_NE(r.find("ima.boot_aggregate"), nullptr);
  EXPECT_TRUE(r.find("ima.boot_aggregate")->passed);

  ev.ima_log = aggregate_line() + ng_line("sha256", Bytes(32, 0xAB), "/bin/lsX");  // another file name
  r = verify(ev, o);
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.find("ima.replay")->passed);
}

}  // namespace
