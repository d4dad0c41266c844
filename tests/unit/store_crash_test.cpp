// mcim-store crash atomicity: a child process runs one mutating operation and is "killed"
// (_exit) at the N-th step of its atomic writes; the parent reopens the store with the same
// counter and finds it consistent and wholly in the old or the new state. N grows until the
// operation completes without reaching the hook, so every step of every write is covered.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <set>
#include <sstream>

#include "common/file.hpp"
#include "mcim-store/store.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/unit/store_fixture.hpp"

using namespace mcimd;
using namespace mcimd::store;
namespace fs = std::filesystem;
using test::FakeAnchor;
using test::make_attestation;
using test::make_profile;
using test::sha256_hex;
using test::sqns_at;

namespace {

// The starting point of every run: p0 enabled and active with one saved SQN, p1 disabled, the
// SRK pinned, an attestation key.
Status populate(Store& s) {
  MCIMD_CHECK(s.pin_srk(Bytes{0x00, 0x02, 0xee, 0x01}));
  MCIMD_CHECK(s.add_profile(make_profile(s, "8988211000000000001", ProfileState::Enabled), sqns_at(0x20)));
  MCIMD_CHECK(s.set_active("p0"));
  MCIMD_CHECK(s.add_profile(make_profile(s, "8988211000000000002", ProfileState::Disabled), sqns_at(0x40)));
  MCIMD_CHECK(s.set_attestation(make_attestation(1)));
  auto sq = MCIMD_TRY(s.sqn_array("p0"));
  sq.accept(0x3e1);
  return s.save_sqn_array("p0", sq);
}

struct World {
  test::TempDir dir;
  fs::path root = dir.path() / "store";
  FakeAnchor anchor{dir.path() / "counter"};
};

std::string hex_or_dash(const std::optional<Bytes>& b) { return b ? to_hex(*b) : "-"; }

void describe_blob(std::ostream& out, const Blob& b, std::set<std::string>& referenced) {
  out << " " << to_hex(b.public_area) << " " << to_hex(b.private_area);
  referenced.insert(sha256_hex(b.public_area));
  referenced.insert(sha256_hex(b.private_area));
}

// Everything a store holds, as text. Also flags what must never be seen: a counter that
// disagrees with the generation, an active profile that is not enabled, a temporary file or an
// object no state references.
std::string describe(const Store& s, World& w) {
  std::ostringstream out;
  std::set<std::string> referenced;
  out << "generation " << s.generation() << " counter " << w.anchor.value() << " active "
      << s.active().value_or("-") << " srk " << hex_or_dash(s.pinned_srk()) << " next " << s.new_metadata().id
      << "\n";
  if (s.generation() != w.anchor.value()) out << "GENERATION AND COUNTER DISAGREE\n";
  for (const auto& m : s.profiles()) {
    out << m.id << " " << m.index << " " << m.iccid << " " << m.imsi << " " << m.operator_id << " "
        << to_string(m.state) << " " << to_string(m.profile_class) << " " << to_hex(m.authority) << "\n";
    if (s.active() == m.id && m.state != ProfileState::Enabled) out << "ACTIVE PROFILE NOT ENABLED\n";
    if (auto p = s.profile(m.id); !p) {
      out << "  profile failed: " << p.error().describe() << "\n";
    } else {
      out << "  blobs";
      describe_blob(out, p->k, referenced);
      describe_blob(out, p->opc, referenced);
      out << "\n";
    }
    if (auto sq = s.sqn_array(m.id); !sq) {
      out << "  sqn failed: " << sq.error().describe() << "\n";
    } else {
      out << "  sqn highest " << sq->highest() << " seq";
      for (auto v : sq->seq()) out << " " << v;
      out << "\n";
    }
  }
  if (auto att = s.attestation(); !att) {
    out << "attestation failed: " << att.error().describe() << "\n";
  } else if (*att) {
    out << "attestation " << (*att)->enrolled_ek_type.value_or("-");
    describe_blob(out, (*att)->ak, referenced);
    out << "\n";
  }
  for (auto& e : fs::recursive_directory_iterator(w.root)) {
    const std::string name = e.path().filename().string();
    if (name.find(".tmp.") != std::string::npos) out << "TEMPORARY FILE LEFT: " << e.path() << "\n";
    if (e.path().parent_path() == w.root / "objects" && !referenced.contains(name))
      out << "UNREFERENCED OBJECT LEFT: " << name << "\n";
  }
  return out.str();
}

std::string snapshot(World& w) {
  auto s = Store::open(w.root, w.anchor);
  if (!s) return "open failed: " + s.error().describe();
  return describe(*s, w);
}

struct Operation {
  const char* name;
  std::function<Status(Store&)> run;
};

void PrintTo(const Operation& op, std::ostream* os) { *os << op.name; }

struct Outcome {
  std::string old_state, new_state;
  std::set<std::string> seen;  // "old" / "new"
  int crash_points = 0;
};

// Runs `op` in a fresh child for every crash point until it completes without being killed.
void check_every_crash_point(const Operation& op, Outcome& outcome) {
  {
    World ref;
    auto s = Store::open(ref.root, ref.anchor);
    ASSERT_TRUE(s) << s.error().describe();
    ASSERT_TRUE(populate(*s));
    outcome.old_state = snapshot(ref);
    auto again = Store::open(ref.root, ref.anchor);
    ASSERT_TRUE(again);
    const uint64_t before = ref.anchor.value();
    auto st = op.run(*again);
    ASSERT_TRUE(st) << st.error().describe();
    EXPECT_EQ(ref.anchor.value(), before + 1) << op.name << " is one commit";
    outcome.new_state = snapshot(ref);
    ASSERT_NE(outcome.old_state, outcome.new_state);
    for (const auto* state : {&outcome.old_state, &outcome.new_state}) {
      ASSERT_EQ(state->find("open failed"), std::string::npos) << *state;
      ASSERT_EQ(state->find("LEFT"), std::string::npos) << *state;
      ASSERT_EQ(state->find("DISAGREE"), std::string::npos) << *state;
      ASSERT_EQ(state->find("NOT ENABLED"), std::string::npos) << *state;
    }
  }
  for (int n = 1; n < 1000; ++n) {
    World w;
    {
      auto s = Store::open(w.root, w.anchor);
      ASSERT_TRUE(s) << s.error().describe();
      ASSERT_TRUE(populate(*s));
    }
    ASSERT_EQ(snapshot(w), outcome.old_state);
    fflush(nullptr);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto s = Store::open(w.root, w.anchor);
      if (!s) _exit(3);
      int steps = 0;
      set_write_step_hook([&](const fs::path&, WriteStep) {
        if (++steps == n) _exit(0);
      });
      auto st = op.run(*s);
      _exit(st ? 1 : 2);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child died with status " << status;
    const int code = WEXITSTATUS(status);
    ASSERT_NE(code, 3) << "the child could not open the store";
    ASSERT_NE(code, 2) << "the operation failed in the child at n=" << n;
    const std::string after = snapshot(w);
    if (code == 1) {
      EXPECT_EQ(after, outcome.new_state) << "completed run";
      outcome.crash_points = n - 1;
      return;
    }
    if (after == outcome.old_state) {
      outcome.seen.insert("old");
    } else if (after == outcome.new_state) {
      outcome.seen.insert("new");
    } else {
      ADD_FAILURE() << op.name << ": crash at write step " << n << " left a mixed or broken store:\n"
                    << after << "\nold:\n"
                    << outcome.old_state << "\nnew:\n"
                    << outcome.new_state;
      return;
    }
    // The recovered store takes further commits and reopens cleanly.
    {
      auto s = Store::open(w.root, w.anchor);
      ASSERT_TRUE(s) << s.error().describe();
      ASSERT_TRUE(s->set_active(std::nullopt));
    }
    const std::string later = snapshot(w);
    EXPECT_EQ(later.find("open failed"), std::string::npos) << later;
    EXPECT_EQ(later.find("LEFT"), std::string::npos) << later;
    EXPECT_EQ(later.find("DISAGREE"), std::string::npos) << later;
  }
  ADD_FAILURE() << op.name << " never completed";
}

struct ClearHook {
  ~ClearHook() { set_write_step_hook(nullptr); }
};
struct WriteFailure : std::runtime_error {
  WriteFailure() : std::runtime_error("write failed (test)") {}
};

class AStoreKilledMidOperation : public testing::TestWithParam<Operation> {};

TEST_P(AStoreKilledMidOperation, ReopensWhollyOldOrWhollyNew) {
  Outcome outcome;
  check_every_crash_point(GetParam(), outcome);
  EXPECT_GE(outcome.crash_points, 5) << "at least store.json's five write steps";
  // A crash before store.json's rename leaves the old state, one after it the new: both must
  // have been seen.
  EXPECT_TRUE(outcome.seen.contains("old"));
  EXPECT_TRUE(outcome.seen.contains("new"));
}

// A write that fails inside the running daemon (disk full, I/O error) at any step: the
// operation reports the error, and the store in memory agrees with what a restart would find,
// which is wholly the old or wholly the new state. The store keeps working.
TEST_P(AStoreKilledMidOperation, StaysInStepWithTheDiskWhenAWriteFails) {
  const Operation& op = GetParam();
  Outcome outcome;
  int failed_writes = 0;
  for (int n = 1; n < 1000; ++n) {
    World w;
    auto s = Store::open(w.root, w.anchor);
    ASSERT_TRUE(s) << s.error().describe();
    ASSERT_TRUE(populate(*s));
    if (n == 1) outcome.old_state = describe(*s, w);
    Status st;
    {
      ClearHook clear;
      int steps = 0;
      set_write_step_hook([&](const fs::path&, WriteStep) {
        if (++steps == n) throw WriteFailure();
      });
      st = op.run(*s);
    }
    const std::string in_memory = describe(*s, w);
    if (st) {
      outcome.new_state = in_memory;
      EXPECT_EQ(snapshot(w), in_memory);
      break;
    }
    EXPECT_EQ(in_memory, snapshot(w)) << op.name << ", failure at write step " << n << ": " << st.error().describe();
    ++failed_writes;
    outcome.seen.insert(in_memory);
    ASSERT_TRUE(s->set_active(std::nullopt)) << "the store keeps working";
    EXPECT_EQ(describe(*s, w), snapshot(w));
  }
  ASSERT_FALSE(outcome.new_state.empty()) << op.name << " never completed";
  EXPECT_GE(failed_writes, 5) << "at least store.json's five write steps failed once each";
  for (const auto& state : outcome.seen)
    EXPECT_TRUE(state == outcome.old_state || state == outcome.new_state) << op.name << " left:\n" << state;
}

INSTANTIATE_TEST_SUITE_P(
    Operations, AStoreKilledMidOperation,
    testing::Values(
        Operation{"AddProfile",
                  [](Store& s) {
                    return s.add_profile(make_profile(s, "8988211000000000003", ProfileState::Disabled),
                                         sqns_at(0x60));
                  }},
        // What the daemon's enable does: one transaction, so never an active disabled profile.
        Operation{"EnableAnotherProfile",
                  [](Store& s) -> Status {
                    auto t = MCIMD_TRY(s.begin());
                    MCIMD_CHECK(t.set_state("p0", ProfileState::Disabled));
                    MCIMD_CHECK(t.set_state("p1", ProfileState::Enabled));
                    MCIMD_CHECK(t.set_active("p1"));
                    return t.commit();
                  }},
        Operation{"SetState", [](Store& s) { return s.set_state("p1", ProfileState::Enabled); }},
        Operation{"ClearActive", [](Store& s) { return s.set_active(std::nullopt); }},
        Operation{"RemoveActiveProfile", [](Store& s) { return s.remove_profile("p0"); }},
        Operation{"RemoveProfile", [](Store& s) { return s.remove_profile("p1"); }},
        Operation{"SaveSqnArray",
                  [](Store& s) -> Status {
                    auto sq = MCIMD_TRY(s.sqn_array("p0"));
                    sq.accept(0x7e2);
                    return s.save_sqn_array("p0", sq);
                  }},
        Operation{"PinSrk", [](Store& s) { return s.pin_srk(Bytes{0x00, 0x02, 0xee, 0x02}); }},
        Operation{"SetAttestation", [](Store& s) { return s.set_attestation(make_attestation(2, "ecc")); }}),
    [](const testing::TestParamInfo<Operation>& info) { return std::string(info.param.name); });

}  // namespace
