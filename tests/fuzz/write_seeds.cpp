// Writes the seed corpus: a minimal valid event log, a truncated one, an IMA list, and an
// evidence document whose quote, PCRs and logs all verify. Usage: fuzz_write_seeds <corpus dir>.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "attestation/eventlog.hpp"
#include "protocol/evidence.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

using namespace mcimd;
using namespace mcimd::test::verifier;
namespace alg = mcimd::attestation::alg;

namespace {
void write(const std::filesystem::path& p, std::span<const uint8_t> data) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}
void write(const std::filesystem::path& p, std::string_view text) {
  write(p, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  std::filesystem::path dir = argv[1];
  EventLogBuilder b;
  b.startup_locality(3);
  b.add(0, 0x00000008, "firmware version 1.0");                  // EV_S_CRTM_VERSION
  b.add_variable(7, 0x80000001, attestation::kEfiGlobalVariable, "SecureBoot", {1});  // EV_EFI_VARIABLE_DRIVER_CONFIG
  b.add_application("\\EFI\\BOOT\\BOOTX64.EFI", "boot loader image");               // EV_EFI_BOOT_SERVICES_APPLICATION
  for (uint32_t pcr = 0; pcr < 8; ++pcr) b.add(pcr, 0x00000004, std::string(4, '\0'));  // EV_SEPARATOR
  write(dir / "eventlog/minimal.bin", b.bytes());
  Bytes truncated(b.bytes().begin(), b.bytes().end() - 7);
  write(dir / "eventlog/truncated.bin", truncated);
  const char* ima =
      "10 91f34b5c671d73504b274a919661cf80dab1e127 ima-ng sha1:1801e1be3e65ef1eaa5c16617bec8f1274eaf6b3 boot_aggregate\n"
      "10 0000000000000000000000000000000000000000 ima-ng sha256:0000000000000000000000000000000000000000000000000000000000000000 /usr/bin/violated\n";
  write(dir / "eventlog/ima.txt", ima);

  // Evidence: an ECC AK quoting sha256 PCRs 0, 4, 7 that the event log replays to.
  auto log = attestation::parse_event_log(b.bytes());
  auto replayed = attestation::replay_event_log(*log);
  auto& bank = replayed->pcrs[alg::kSha256];
  protocol::Evidence ev;
  ev.nonce = Bytes(20, 0xA5);
  ev.pcrs = {{"sha256", {{0, bank[0]}, {4, bank[4]}, {7, bank[7]}}}};
  Bytes concat;
  for (unsigned pcr : {0u, 4u, 7u}) concat.insert(concat.end(), bank[pcr].begin(), bank[pcr].end());
  auto ak = ec_key();
  ev.ak_public = tpm_public(ak.get(), kAkAttributes);
  QuoteSpec q;
  q.nonce = evidence_qualifying_data(ev.nonce);
  q.selection = {{alg::kSha256, {0, 4, 7}}};
  q.pcr_digest = sha(alg::kSha256, concat);
  ev.quote_message = attest_message(q);
  ev.quote_signature = tpm_sign(ak.get(), ev.quote_message);
  ev.event_log = b.bytes();
  write(dir / "evidence/evidence.json", protocol::to_json(ev));
  ev.event_log.reset();
  ev.ima_log = ima;
  write(dir / "evidence/evidence-ima.json", protocol::to_json(ev));

  // A platform report carrying the event log.
  protocol::PlatformReport report;
  report.nonce = ev.nonce;
  report.policy_digest = Bytes(32, 0x11);
  report.trusted = true;
  report.checks = {{"policy.variable[SecureBoot]", true, "1 measurement(s) allowed"}};
  report.pcrs = ev.pcrs;
  report.event_log = b.bytes();
  write(dir / "evidence/report.json", protocol::to_json(report));
  return 0;
}
