#pragma once
// The steps that turn a checked package request into an issued MCIM package, shared by the live
// service (operator/server.cpp, one request per session) and the batch tool (operator/batch.cpp,
// thousands of factory records): subscriptions with random numbers, their AuC records, and the
// package's counter, build and record. Each step is one registry or file operation, so a caller
// can put its own steps between them (the batch writes the package file before recording it).
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "operator/package_builder.hpp"
#include "operator/registry.hpp"

namespace mcimd::op {

// n bytes from the OpenSSL random generator (Internal when it fails).
[[nodiscard]] Result<Bytes> random_bytes(std::size_t n);
// n decimal digits, uniformly distributed (bytes ≥ 250 are drawn again: no modulo bias).
[[nodiscard]] Result<std::string> random_digits(std::size_t n);

// How new subscriptions are numbered.
struct SubscriptionNumbering {
  std::string operator_id;            // MCC+MNC: 5 or 6 digits, the IMSI's first digits
  std::string iccid_prefix = "8949";  // the ICCID's first digits; random digits make 19 in all
};

// A new subscription with a random ICCID and IMSI under `numbering`, drawn again (up to 8 times)
// when the registry already has one of them. `id` names it (absent: the registry draws one).
// The registry's errors otherwise (AlreadyExists for an id in use).
[[nodiscard]] Result<Subscription> create_random_subscription(const Registry& registry,
                                                              const SubscriptionNumbering& numbering,
                                                              Timestamp now,
                                                              const std::optional<std::string>& id = std::nullopt);

// The AuC's records of subscriptions: operator/auc_store.hpp.
// Fresh random K and OPc for a subscription, its AuC record written (atomically) before they are
// returned, so no package ever carries keys the network's AuC does not have.
[[nodiscard]] Result<McimCredentials> new_auc_record(const std::filesystem::path& auc_dir, const Subscription& sub);
// K and OPc of a subscription from its AuC record: NotFound when there is none, StoreCorrupt when
// it does not parse, its keys are not 16 bytes of hex, or it names another IMSI than the registry.
[[nodiscard]] Result<McimCredentials> read_auc_record(const std::filesystem::path& auc_dir, const Subscription& sub);

struct PackageIssue {
  std::string package_id;
  std::string operator_id;
  Timestamp issued;
  std::chrono::seconds lifetime = std::chrono::hours{24};
};

// Takes the device's next package counter from the registry, above the counter the request says
// the device accepted last (another operator's packages count too), and builds the package
// (build_package's checks). The package is not recorded: see record_issued_package.
[[nodiscard]] Result<BuiltPackage> make_package(const Registry& registry, const protocol::PackageRequest& request,
                                                std::span<const uint8_t> ak_name, const McimCredentials& mcim,
                                                const PackageIssue& issue, const PolicySigner& signer);
// Records a package make_package built (Registry::record_package's checks).
[[nodiscard]] Status record_issued_package(const Registry& registry, std::span<const uint8_t> ak_name,
                                           const BuiltPackage& built, const McimCredentials& mcim);

}  // namespace mcimd::op
