#pragma once
// Valid lifecycle documents (protocol/lifecycle.hpp) built in software, for one software device
// of provisioning_fixtures.hpp: a release, a command, and a deletion receipt quoted by its AK.
#include <chrono>
#include <string>

#include "protocol/lifecycle.hpp"
#include "tests/fuzz/provisioning_fixtures.hpp"

namespace mcimd::test::lifecycle {

using provisioning::Device;
using provisioning::kIssued;

inline const std::string kIccid = "8901001234567890123";
// An NV index in the owner range (TPM 2.0 Part 2 §7.2: handle type 0x01).
inline constexpr uint32_t kNvIndex = 0x01500020;

inline protocol::ReleaseAuthorisation release(const Device& d) {
  return {"rel-2027.02.01-0001", d.id, kIccid, "Operator A", "Operator B", 5, kIssued, kIssued + std::chrono::days{7},
          protocol::ReleaseSigner::Operator};
}

inline protocol::OperatorCommand command(const Device& d) {
  return {"cmd-0001", d.id, kIccid, "Operator A", protocol::CommandKind::Disable, 6, kIssued,
          kIssued + std::chrono::days{1}};
}

inline protocol::DeletionBody deletion_body(const Device& d) {
  return {d.id, kIccid, "Operator A", 2, protocol::DeletionReason::ChangeOfSubscription, kNvIndex, 3};
}

inline protocol::DeletionReceipt deletion_receipt(const Device& d, const protocol::DeletionBody& body) {
  return provisioning::quoted_receipt<protocol::DeletionReceipt>(d, protocol::to_json(body),
                                                                 protocol::QuoteDomain::DeletionReceipt);
}

inline protocol::DeletionReceipt deletion_receipt(const Device& d) { return deletion_receipt(d, deletion_body(d)); }

}  // namespace mcimd::test::lifecycle
