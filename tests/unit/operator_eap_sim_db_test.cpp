// mcim-operator eap-sim-db: hostapd's eap_sim_db requests answered in-process, every vector and
// triplet checked by the USIM side of aka/ (TS 35.208 set 1), resynchronisation from AUTS, and
// hostile datagrams that must get no reply; then the binary serving a real UNIX datagram socket.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "aka/sqn.hpp"
#include "aka/usim.hpp"
#include "common/bytes.hpp"
#include "common/unix_socket.hpp"
#include "operator/eap_sim_db.hpp"
#include "tests/support/mcimd_instance.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace mcimd;

namespace {

const std::string kImsi = "001010123456789";
const std::string kOtherImsi = "001010000000001";

template <std::size_t N>
std::array<uint8_t, N> bytes_of(std::string_view hex) {
  auto bytes = from_hex(hex, "test value", N);
  if (!bytes) throw std::runtime_error(bytes.error().describe());
  std::array<uint8_t, N> out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

std::vector<std::string> words(const std::string& text, char separator = ' ') {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string word; std::getline(in, word, separator);) out.push_back(word);
  return out;
}

op::SubscriberKeys set1_keys() {
  op::SubscriberKeys::HexInput input;
  input.k = test::kSet1K;
  input.opc = std::string_view(test::kSet1Opc);
  auto keys = op::SubscriberKeys::from_hex(input);
  if (!keys) throw std::runtime_error(keys.error().describe());
  return std::move(*keys);
}

// The network side as hostapd talks to it, and a USIM holding the same keys whose SQN array
// starts like the demo profile's (initial SQN 0x20).
class AnEapSimDb : public ::testing::Test {
 protected:
  void SetUp() override { start(); }

  void start(op::EapSimDbOptions options = {}, uint64_t usim_initial_sqn = 0x20) {
    if (options.imsi.empty()) options.imsi = kImsi;
    if (aka::sqn_to_u64(options.first_sqn) == 0) options.first_sqn = aka::sqn_from_u64(0x20);
    // Distinct, recognisable RANDs: byte 0 counts the draws.
    auto rand = [this]() -> Result<aka::Rand> {
      if (rand_fails_) return fail(Code::Internal, "no entropy today");
      aka::Rand r{};
      r.fill(0x5a);
      r[0] = static_cast<uint8_t>(++draws_);
      r[1] = static_cast<uint8_t>(draws_ >> 8);
      return r;
    };
    auto log = [this](std::string_view line) { log_.emplace_back(line); };
    auto db = op::EapSimDb::create(set1_keys(), options, rand, log);
    ASSERT_TRUE(db) << db.error().describe();
    db_.emplace(std::move(*db));
    auto sqns = aka::SqnArray::create(aka::SqnParameters{});
    ASSERT_TRUE(sqns);
    sqns_.emplace(std::move(*sqns));
    sqns_->seed(usim_initial_sqn);
  }

  op::EapSimDb& db() { return *db_; }

  // The USIM's verdict on an AKA-RESP-AUTH; its RES, CK and IK must be those of the reply.
  aka::UmtsOutcome usim_check(const std::string& reply) {
    auto f = words(reply);
    EXPECT_EQ(f.size(), 7u) << reply;
    if (f.size() != 7u) throw std::runtime_error("not an AKA-RESP-AUTH");
    auto outcome = aka::usim_authenticate(*usim_k_, opc_, *sqns_, bytes_of<16>(f[2]), bytes_of<16>(f[3]));
    if (!outcome) throw std::runtime_error(outcome.error().describe());
    if (auto* ok = std::get_if<aka::UmtsSuccess>(&*outcome)) {
      EXPECT_EQ(to_hex(ok->ik), f[4]);
      EXPECT_EQ(to_hex(ok->ck), f[5]);
      EXPECT_EQ(to_hex(ok->res), f[6]);
    }
    return *outcome;
  }

  std::string vector() {
    auto reply = db().handle("AKA-REQ-AUTH " + kImsi);
    if (!reply) throw std::runtime_error("no reply to AKA-REQ-AUTH");
    return *reply;
  }

  std::string all_log() const {
    std::string all;
    for (const auto& line : log_) all += line + '\n';
    return all;
  }

  std::optional<aka::OpenSslAes> usim_k_{*aka::OpenSslAes::create(*from_hex(test::kSet1K, "K", 16))};
  aka::Block opc_ = bytes_of<16>(test::kSet1Opc);
  std::optional<aka::SqnArray> sqns_;
  std::optional<op::EapSimDb> db_;
  std::vector<std::string> log_;
  unsigned draws_ = 0;
  bool rand_fails_ = false;
};

TEST_F(AnEapSimDb, HandsOutAnAkaVectorTheUsimAccepts) {
  const std::string reply = vector();
  EXPECT_TRUE(std::regex_match(reply, std::regex("AKA-RESP-AUTH 001010123456789 [0-9a-f]{32} [0-9a-f]{32} "
                                                 "[0-9a-f]{32} [0-9a-f]{32} [0-9a-f]{16}")))
      << reply;
  auto outcome = usim_check(reply);
  ASSERT_TRUE(std::holds_alternative<aka::UmtsSuccess>(outcome));
  EXPECT_EQ(std::get<aka::UmtsSuccess>(outcome).sqn, 0x20u);
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_EQ(log_[0], "eap-sim-db: AKA vector 1 for IMSI 001010123456789 (SEQ 1, IND 0)");
}

TEST_F(AnEapSimDb, GivesTheVectorGenerateVectorMakesForThatRandAndSqn) {
  const auto f = words(vector());
  ASSERT_EQ(f.size(), 7u);
  auto expected = aka::generate_vector(*usim_k_, opc_, bytes_of<16>(f[2]), aka::sqn_from_u64(0x20), {0x80, 0x00});
  ASSERT_TRUE(expected);
  EXPECT_EQ(f[3], to_hex(expected->autn));
  EXPECT_EQ(f[4], to_hex(expected->ik));
  EXPECT_EQ(f[5], to_hex(expected->ck));
  EXPECT_EQ(f[6], to_hex(expected->xres));
}

TEST_F(AnEapSimDb, AdvancesSeqAndIndByOneForEachVectorAndTheUsimAcceptsEveryOne) {
  uint64_t previous = 0;
  for (unsigned n = 1; n <= 40; ++n) {  // past 32: IND wraps, SEQ keeps growing
    auto outcome = usim_check(vector());
    ASSERT_TRUE(std::holds_alternative<aka::UmtsSuccess>(outcome)) << "vector " << n;
    const uint64_t sqn = std::get<aka::UmtsSuccess>(outcome).sqn;
    EXPECT_GT(sqn, previous);
    EXPECT_EQ(sqn >> 5, n);
    EXPECT_EQ(sqn & 31, (n - 1) % 32);
    previous = sqn;
  }
  EXPECT_EQ(log_[2], "eap-sim-db: AKA vector 3 for IMSI 001010123456789 (SEQ 3, IND 2)");
  EXPECT_EQ(log_[32], "eap-sim-db: AKA vector 33 for IMSI 001010123456789 (SEQ 33, IND 0)");
}

TEST_F(AnEapSimDb, AcceptsOneTrailingNewline) {
  auto reply = db().handle("AKA-REQ-AUTH " + kImsi + "\n");
  ASSERT_TRUE(reply);
  EXPECT_TRUE(std::holds_alternative<aka::UmtsSuccess>(usim_check(*reply)));
}

TEST_F(AnEapSimDb, ResynchronisesFromAValidAutsSoThatTheNextVectorIsAccepted) {
  start({}, /*usim_initial_sqn=*/1000 << 5);  // the USIM is far ahead: SEQ 1000
  const std::string stale_reply = vector();
  const auto stale = words(stale_reply);
  auto outcome = usim_check(stale_reply);
  ASSERT_TRUE(std::holds_alternative<aka::UmtsSyncFailure>(outcome));
  const auto auts = std::get<aka::UmtsSyncFailure>(outcome).auts;

  EXPECT_EQ(db().handle("AKA-AUTS " + kImsi + " " + to_hex(auts) + " " + stale[2]), std::nullopt);
  // SQN_MS: SEQ 999 in every slot after seeding SEQ 1000; the highest IND among them is 31.
  EXPECT_EQ(log_.back(), "eap-sim-db: resynchronised IMSI 001010123456789 to SEQ 999 IND 31 from AUTS");
  ASSERT_TRUE(db().next_sqn());
  EXPECT_EQ(*db().next_sqn(), (uint64_t{1000} << 5) | 0);

  auto fresh = usim_check(vector());
  ASSERT_TRUE(std::holds_alternative<aka::UmtsSuccess>(fresh));
  EXPECT_EQ(std::get<aka::UmtsSuccess>(fresh).sqn, uint64_t{1000} << 5);
  EXPECT_EQ(log_.back(), "eap-sim-db: AKA vector 2 for IMSI 001010123456789 (SEQ 1000, IND 0)");
}

TEST_F(AnEapSimDb, KeepsItsSqnWhenMacSDoesNotVerify) {
  start({}, /*usim_initial_sqn=*/1000 << 5);
  const std::string stale_reply = vector();
  const auto stale = words(stale_reply);
  auto outcome = usim_check(stale_reply);
  ASSERT_TRUE(std::holds_alternative<aka::UmtsSyncFailure>(outcome));
  auto forged = std::get<aka::UmtsSyncFailure>(outcome).auts;
  forged[13] ^= 0x01;  // the last bit of MAC-S
  const auto before = db().next_sqn();

  EXPECT_EQ(db().handle("AKA-AUTS " + kImsi + " " + to_hex(forged) + " " + stale[2]), std::nullopt);
  EXPECT_EQ(db().next_sqn(), before);
  EXPECT_EQ(log_.back(), "eap-sim-db: AUTS for IMSI 001010123456789 refused: MAC-S does not verify (SQN kept)");

  // The genuine AUTS with another RAND than the one it answers fails the same way.
  auto genuine = std::get<aka::UmtsSyncFailure>(outcome).auts;
  EXPECT_EQ(db().handle("AKA-AUTS " + kImsi + " " + to_hex(genuine) + " " + std::string(32, '0')), std::nullopt);
  EXPECT_EQ(db().next_sqn(), before);
  EXPECT_NE(log_.back().find("refused: MAC-S does not verify"), std::string::npos);
}

TEST_F(AnEapSimDb, NeverMovesBackForAnAutsReportingAnOlderSqn) {
  // A USIM that has only seen SQN 0x20 reports it; our next vector (SEQ 4) is already fresh.
  for (int i = 0; i < 3; ++i) vector();
  aka::Rand rand{};
  rand.fill(0x11);
  auto outputs = aka::milenage(*usim_k_, opc_, rand, aka::sqn_from_u64(0x20), aka::Amf{0, 0});
  ASSERT_TRUE(outputs);
  aka::Auts auts{};
  const auto sqn_ms = aka::sqn_from_u64(0x20);
  for (std::size_t i = 0; i < 6; ++i) auts[i] = sqn_ms[i] ^ outputs->ak_star[i];
  std::copy(outputs->mac_s.begin(), outputs->mac_s.end(), auts.begin() + 6);

  EXPECT_EQ(db().handle("AKA-AUTS " + kImsi + " " + to_hex(auts) + " " + to_hex(rand)), std::nullopt);
  EXPECT_EQ(db().next_sqn(), std::optional<uint64_t>((uint64_t{4} << 5) | 3));
  EXPECT_EQ(log_.back(),
            "eap-sim-db: AUTS for IMSI 001010123456789 verified, SQN kept: the next SEQ 4 is already above SQN_MS "
            "(SEQ 1 IND 0)");
}

TEST_F(AnEapSimDb, GivesGsmTripletsEqualToTheUsimsGsmAuthentication) {
  auto reply = db().handle("SIM-REQ-AUTH " + kImsi + " 3");
  ASSERT_TRUE(reply);
  const auto f = words(*reply);
  ASSERT_EQ(f.size(), 5u) << *reply;
  EXPECT_EQ(f[0], "SIM-RESP-AUTH");
  EXPECT_EQ(f[1], kImsi);
  std::set<std::string> rands;
  for (std::size_t i = 2; i < f.size(); ++i) {
    ASSERT_TRUE(std::regex_match(f[i], std::regex("[0-9a-f]{16}:[0-9a-f]{8}:[0-9a-f]{32}"))) << f[i];
    const auto parts = words(f[i], ':');
    auto expected = aka::gsm_authenticate(*usim_k_, opc_, bytes_of<16>(parts[2]));
    ASSERT_TRUE(expected);
    EXPECT_EQ(parts[0], to_hex(expected->kc));
    EXPECT_EQ(parts[1], to_hex(expected->sres));
    rands.insert(parts[2]);
  }
  EXPECT_EQ(rands.size(), 3u);
  EXPECT_EQ(log_.back(), "eap-sim-db: 3 GSM triplets for IMSI 001010123456789");
  EXPECT_EQ(db().next_sqn(), std::optional<uint64_t>(0x20)) << "GSM triplets use no SQN";
}

TEST_F(AnEapSimDb, ClampsTheTripletCountToOneToThree) {
  const std::vector<std::pair<std::string, std::size_t>> cases{
      {"0", 1}, {"1", 1}, {"2", 2}, {"3", 3}, {"4", 3}, {"999999999", 3}, {"003", 3}};
  for (const auto& [asked, given] : cases) {
    auto reply = db().handle("SIM-REQ-AUTH " + kImsi + " " + asked);
    ASSERT_TRUE(reply) << asked;
    EXPECT_EQ(words(*reply).size(), 2 + given) << asked;
  }
  EXPECT_EQ(log_.front(), "eap-sim-db: 1 GSM triplet for IMSI 001010123456789");
}

TEST_F(AnEapSimDb, AnswersFailureForAnotherImsi) {
  EXPECT_EQ(db().handle("AKA-REQ-AUTH " + kOtherImsi), "AKA-RESP-AUTH " + kOtherImsi + " FAILURE");
  EXPECT_EQ(db().handle("SIM-REQ-AUTH " + kOtherImsi + " 3"), "SIM-RESP-AUTH " + kOtherImsi + " FAILURE");
  EXPECT_EQ(db().handle("AKA-REQ-AUTH 1"), "AKA-RESP-AUTH 1 FAILURE") << "hostapd allows up to 20 characters";
  EXPECT_EQ(db().handle("AKA-AUTS " + kOtherImsi + " " + std::string(28, 'a') + " " + std::string(32, 'b')),
            std::nullopt);
  EXPECT_EQ(log_.back(), "eap-sim-db: ignored AKA-AUTS request: unknown IMSI 001010000000001");
  EXPECT_EQ(db().next_sqn(), std::optional<uint64_t>(0x20));
}

TEST_F(AnEapSimDb, AnswersFailureWhenNoRandCanBeDrawn) {
  rand_fails_ = true;
  EXPECT_EQ(db().handle("AKA-REQ-AUTH " + kImsi), "AKA-RESP-AUTH " + kImsi + " FAILURE");
  EXPECT_EQ(db().handle("SIM-REQ-AUTH " + kImsi + " 2"), "SIM-RESP-AUTH " + kImsi + " FAILURE");
  EXPECT_NE(log_.back().find("Failed to draw RAND for IMSI 001010123456789"), std::string::npos) << log_.back();
  EXPECT_EQ(db().next_sqn(), std::optional<uint64_t>(0x20)) << "no vector was handed out";
}

TEST_F(AnEapSimDb, AnswersFailureOnceSeqIsExhausted) {
  op::EapSimDbOptions options;
  options.first_sqn = aka::sqn_from_u64(0xffffffffffe0);  // the last SEQ of 43 bits, IND 0
  start(options);
  auto last = db().handle("AKA-REQ-AUTH " + kImsi);
  ASSERT_TRUE(last);
  EXPECT_EQ(words(*last).size(), 7u);
  EXPECT_EQ(db().next_sqn(), std::nullopt);
  EXPECT_EQ(db().handle("AKA-REQ-AUTH " + kImsi), "AKA-RESP-AUTH " + kImsi + " FAILURE");
  EXPECT_NE(log_.back().find("SEQ exhausted"), std::string::npos) << log_.back();
}

TEST_F(AnEapSimDb, NeverLogsKeysOrVectorValues) {
  const auto aka_reply = words(vector());
  const auto sim_reply = words(*db().handle("SIM-REQ-AUTH " + kImsi + " 2"));
  db().handle("AKA-AUTS " + kImsi + " " + std::string(28, 'c') + " " + aka_reply[2]);
  const std::string log = all_log();
  for (const std::string& secret : {std::string(test::kSet1K), std::string(test::kSet1Opc)})
    EXPECT_EQ(log.find(secret), std::string::npos);
  for (std::size_t i = 2; i < aka_reply.size(); ++i) EXPECT_EQ(log.find(aka_reply[i]), std::string::npos) << i;
  for (std::size_t i = 2; i < sim_reply.size(); ++i)
    for (const auto& part : words(sim_reply[i], ':')) EXPECT_EQ(log.find(part), std::string::npos) << part;
  EXPECT_EQ(log.find("cccccccc"), std::string::npos);
}

TEST(AnEapSimDbBeingCreated, RefusesABadImsiIndBitsOrASeqOfZero) {
  auto attempt = [](op::EapSimDbOptions options) {
    auto db = op::EapSimDb::create(set1_keys(), std::move(options));
    return db ? std::string() : db.error().message;
  };
  op::EapSimDbOptions good;
  good.imsi = kImsi;
  good.first_sqn = aka::sqn_from_u64(0x20);
  EXPECT_EQ(attempt(good), "");
  for (const std::string imsi : {"12345", "1234567890123456", "00101012345678x", ""}) {
    auto options = good;
    options.imsi = imsi;
    EXPECT_EQ(attempt(options).rfind("--imsi:", 0), 0u) << imsi;
  }
  for (unsigned bits : {0u, 11u}) {
    auto options = good;
    options.ind_bits = bits;
    EXPECT_EQ(attempt(options).rfind("--ind-bits:", 0), 0u) << bits;
  }
  auto options = good;
  options.first_sqn = aka::sqn_from_u64(0x1f);  // SEQ 0, IND 31
  EXPECT_EQ(attempt(options).rfind("--sqn:", 0), 0u);
}

struct Hostile {
  std::string name;
  std::string datagram;
};
void PrintTo(const Hostile& h, std::ostream* os) { *os << h.name; }

class AnEapSimDbGivenAHostileDatagram : public AnEapSimDb, public ::testing::WithParamInterface<Hostile> {};

TEST_P(AnEapSimDbGivenAHostileDatagram, SendsNoReplyLogsWhyAndKeepsServing) {
  EXPECT_EQ(db().handle(GetParam().datagram), std::nullopt);
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_EQ(log_[0].rfind("eap-sim-db: ignored ", 0), 0u) << log_[0];
  EXPECT_EQ(log_[0].find("SECRET"), std::string::npos) << "the request's bytes are not echoed: " << log_[0];
  EXPECT_EQ(db().next_sqn(), std::optional<uint64_t>(0x20));
  EXPECT_TRUE(std::holds_alternative<aka::UmtsSuccess>(usim_check(vector())));
}

const std::string kAuts(28, 'a');
const std::string kRand(32, 'b');

INSTANTIATE_TEST_SUITE_P(
    Datagrams, AnEapSimDbGivenAHostileDatagram,
    ::testing::Values(
        Hostile{"Empty", ""},
        Hostile{"OnlyANewline", "\n"},
        Hostile{"UnknownVerb", "SECRET-REQ-AUTH " + kImsi},
        Hostile{"LowerCaseVerb", "aka-req-auth " + kImsi},
        Hostile{"ResponseVerb", "AKA-RESP-AUTH " + kImsi + " FAILURE"},
        Hostile{"VerbAlone", "AKA-REQ-AUTH"},
        Hostile{"TrailingSpace", "AKA-REQ-AUTH " + kImsi + " "},
        Hostile{"DoubledSpace", "AKA-REQ-AUTH  " + kImsi},
        Hostile{"TabSeparator", "AKA-REQ-AUTH\t" + kImsi},
        Hostile{"ExtraField", "AKA-REQ-AUTH " + kImsi + " 3"},
        Hostile{"TwoNewlines", "AKA-REQ-AUTH " + kImsi + "\n\n"},
        Hostile{"CarriageReturn", "AKA-REQ-AUTH " + kImsi + "\r\n"},
        Hostile{"ImsiWithALetter", "AKA-REQ-AUTH 00101012345678SECRET"},
        Hostile{"ImsiOf21Digits", "AKA-REQ-AUTH " + std::string(21, '1')},
        Hostile{"NulInImsi", std::string("AKA-REQ-AUTH 0010101234\0" "56789", 29)},
        Hostile{"AutsOf26Digits", "AKA-AUTS " + kImsi + " " + kAuts.substr(2) + " " + kRand},
        Hostile{"AutsOf30Digits", "AKA-AUTS " + kImsi + " " + kAuts + "aa " + kRand},
        Hostile{"AutsNotHex", "AKA-AUTS " + kImsi + " " + std::string(28, 'g') + " " + kRand},
        Hostile{"AutsWith0xPrefix", "AKA-AUTS " + kImsi + " 0x" + kAuts.substr(2) + " " + kRand},
        Hostile{"RandOf31Digits", "AKA-AUTS " + kImsi + " " + kAuts + " " + kRand.substr(1)},
        Hostile{"RandNotHex", "AKA-AUTS " + kImsi + " " + kAuts + " " + std::string(31, 'b') + "z"},
        Hostile{"AutsWithoutRand", "AKA-AUTS " + kImsi + " " + kAuts},
        Hostile{"AutsExtraField", "AKA-AUTS " + kImsi + " " + kAuts + " " + kRand + " x"},
        Hostile{"SimWithoutCount", "SIM-REQ-AUTH " + kImsi},
        Hostile{"SimNegativeCount", "SIM-REQ-AUTH " + kImsi + " -1"},
        Hostile{"SimCountOfTenDigits", "SIM-REQ-AUTH " + kImsi + " 1234567890"},
        Hostile{"SimCountNotANumber", "SIM-REQ-AUTH " + kImsi + " three"},
        Hostile{"SimExtraField", "SIM-REQ-AUTH " + kImsi + " 3 3"},
        Hostile{"TooLong", "AKA-REQ-AUTH " + kImsi + std::string(200, ' ')},
        Hostile{"OneByteTooLong", std::string(op::kEapSimDbMaxRequest + 1, 'A')},
        Hostile{"Binary", std::string("\xff\xfe\x00\x01SECRET", 10)}),
    [](const ::testing::TestParamInfo<Hostile>& info) { return info.param.name; });

// --- The binary on a real socket ---

const std::string kBinary = MCIMD_BINARY_DIR "/operator/mcim-operator";

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A client socket bound to a path of its own, as hostapd's is: the server answers to it.
class Client {
 public:
  explicit Client(const std::filesystem::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const auto address = *unix_socket_address(path);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
      throw std::runtime_error("cannot bind the test client");
  }
  ~Client() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  std::optional<std::string> request(const std::filesystem::path& server, const std::string& text) {
    const auto address = *unix_socket_address(server);
    if (::sendto(fd_, text.data(), text.size(), 0, reinterpret_cast<const sockaddr*>(&address), sizeof address) < 0)
      return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return std::nullopt;
    char buffer[1000];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n < 0) return std::nullopt;
    return std::string(buffer, static_cast<std::size_t>(n));
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

std::vector<std::string> serve_args(const std::filesystem::path& socket, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{kBinary, "eap-sim-db", "--socket", socket.string(), "--imsi", kImsi,
                                "--k",   test::kSet1K, "--opc",  test::kSet1Opc};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

TEST(TheEapSimDbCommand, AnswersOverItsSocketAndRemovesItOnSigterm) {
  test::TempDir dir;
  const auto socket = dir.path() / "auc.sock";
  const auto log = dir.path() / "eap-sim-db.log";
  test::Process server({serve_args(socket), {}, dir.path() / "out", log});
  ASSERT_TRUE(test::wait_until([&] { return read_text(log).find("eap-sim-db: serving") != std::string::npos; },
                               std::chrono::seconds(20)))
      << read_text(log);
  EXPECT_EQ(read_text(log), "eap-sim-db: serving IMSI 001010123456789 on " + socket.string() + "\n");
  struct stat st {};
  ASSERT_EQ(::lstat(socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);

  Client client(dir.path() / "hostapd.sock");
  auto reply = client.request(socket, "AKA-REQ-AUTH " + kImsi);
  ASSERT_TRUE(reply) << read_text(log);
  EXPECT_TRUE(std::regex_match(*reply, std::regex("AKA-RESP-AUTH 001010123456789 [0-9a-f]{32} [0-9a-f]{32} "
                                                  "[0-9a-f]{32} [0-9a-f]{32} [0-9a-f]{16}")))
      << *reply;
  auto sims = client.request(socket, "SIM-REQ-AUTH " + kImsi + " 3");
  ASSERT_TRUE(sims);
  EXPECT_EQ(words(*sims).size(), 5u) << *sims;
  EXPECT_EQ(client.request(socket, "AKA-REQ-AUTH " + kOtherImsi), "AKA-RESP-AUTH " + kOtherImsi + " FAILURE");

  const auto status = server.stop(SIGTERM);
  ASSERT_TRUE(status);
  ASSERT_TRUE(WIFEXITED(*status)) << *status;
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(socket)));
  const std::string text = read_text(log);
  EXPECT_NE(text.find("eap-sim-db: AKA vector 1 for IMSI 001010123456789 (SEQ 1, IND 0)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("eap-sim-db: 3 GSM triplets for IMSI 001010123456789\n"), std::string::npos) << text;
  EXPECT_NE(text.find("eap-sim-db: stopped\n"), std::string::npos) << text;
}

TEST(TheEapSimDbCommand, ReplacesAStaleSocketButNeverAFile) {
  test::TempDir dir;
  const auto path = dir.path() / "auc.sock";
  {  // bound and closed: the file stays, nobody listens
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    const auto address = *unix_socket_address(path);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    ::close(fd);
  }
  ASSERT_TRUE(std::filesystem::exists(std::filesystem::symlink_status(path)));
  const auto log = dir.path() / "log";
  {
    test::Process server({serve_args(path), {}, dir.path() / "out", log});
    ASSERT_TRUE(test::wait_until([&] { return read_text(log).find("serving") != std::string::npos; },
                                 std::chrono::seconds(20)))
        << read_text(log);
    // A second server finds the socket served and leaves it alone.
    auto second = test::run(serve_args(path));
    EXPECT_EQ(second.exit_code, 1) << second.err;
    EXPECT_NE(second.err.find("another process serves"), std::string::npos) << second.err;
    Client client(dir.path() / "client.sock");
    EXPECT_TRUE(client.request(path, "AKA-REQ-AUTH " + kImsi));
  }

  const auto file = dir.path() / "not-a-socket";
  { std::ofstream(file) << "keep me\n"; }
  auto r = test::run(serve_args(file));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("exists and is not a socket"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(file), "keep me\n");
}

struct BadCommandLine {
  std::string name;
  std::vector<std::string> argv;
  std::string named;  // must appear in stderr
};
void PrintTo(const BadCommandLine& b, std::ostream* os) { *os << b.name; }

class TheEapSimDbCommandGivenBadInput : public ::testing::TestWithParam<BadCommandLine> {};

TEST_P(TheEapSimDbCommandGivenBadInput, ExitsWithTwoNamingTheOption) {
  auto r = test::run(GetParam().argv);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(GetParam().named), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("serving"), std::string::npos) << r.err;
}

// argv with `option` given `value` instead.
std::vector<std::string> with(std::vector<std::string> argv, const std::string& option, const std::string& value) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == option) {
      argv[i + 1] = value;
      return argv;
    }
  argv.push_back(option);
  argv.push_back(value);
  return argv;
}

std::vector<std::string> without(std::vector<std::string> argv, const std::string& option) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == option) argv.erase(argv.begin() + static_cast<long>(i), argv.begin() + static_cast<long>(i) + 2);
  return argv;
}

const std::filesystem::path kUnusedSocket = "/nonexistent-dir/auc.sock";

INSTANTIATE_TEST_SUITE_P(
    CommandLines, TheEapSimDbCommandGivenBadInput,
    ::testing::Values(
        BadCommandLine{"MissingSocket", without(serve_args(kUnusedSocket), "--socket"), "--socket"},
        BadCommandLine{"MissingImsi", without(serve_args(kUnusedSocket), "--imsi"), "--imsi"},
        BadCommandLine{"ShortImsi", with(serve_args(kUnusedSocket), "--imsi", "12345"), "--imsi"},
        BadCommandLine{"ImsiWithALetter", with(serve_args(kUnusedSocket), "--imsi", "00101012345678x"), "--imsi"},
        BadCommandLine{"SocketPathTooLong", serve_args("/tmp/" + std::string(120, 's')), "--socket"},
        BadCommandLine{"ShortK", with(serve_args(kUnusedSocket), "--k", "465b"), "--k"},
        BadCommandLine{"OpAndOpc", with(serve_args(kUnusedSocket), "--op", test::kSet1Opc), "--op"},
        BadCommandLine{"BadSqn", with(serve_args(kUnusedSocket), "--sqn", "0020"), "--sqn"},
        BadCommandLine{"SeqZero", with(serve_args(kUnusedSocket), "--sqn", "00000000001f"), "--sqn"},
        BadCommandLine{"BadAmf", with(serve_args(kUnusedSocket), "--amf", "80"), "--amf"},
        BadCommandLine{"IndBitsOutOfRange", with(serve_args(kUnusedSocket), "--ind-bits", "11"), "--ind-bits"}),
    [](const ::testing::TestParamInfo<BadCommandLine>& info) { return info.param.name; });

}  // namespace
