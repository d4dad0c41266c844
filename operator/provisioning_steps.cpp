#include "operator/provisioning_steps.hpp"

#include <openssl/rand.h>

#include "common/file.hpp"
#include "operator/auc_store.hpp"

namespace mcimd::op {
namespace {

constexpr int kMaxNumberDraws = 8;
constexpr std::size_t kIccidDigits = 19;  // ITU-T E.118: 19 digits before the Luhn digit some add
constexpr std::size_t kImsiDigits = 15;   // TS 23.003 §2.2: at most 15
constexpr std::size_t kAucKeySize = 16;   // K and OPc: 128 bits (TS 35.206 §2)

}  // namespace

Result<Bytes> random_bytes(std::size_t n) {
  Bytes out(n);
  if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) return fail(Code::Internal, "the random generator failed");
  return out;
}

Result<std::string> random_digits(std::size_t n) {
  std::string out;
  while (out.size() < n) {
    auto b = MCIMD_TRY(random_bytes(16));
    for (uint8_t v : b)
      if (v < 250 && out.size() < n) out.push_back(static_cast<char>('0' + v % 10));  // no modulo bias
  }
  return out;
}

Result<Subscription> create_random_subscription(const Registry& registry, const SubscriptionNumbering& numbering,
                                                Timestamp now, const std::optional<std::string>& id) {
  if (numbering.iccid_prefix.size() >= kIccidDigits || numbering.operator_id.size() >= kImsiDigits)
    return fail(Code::InvalidArgument, "the ICCID prefix or operator id leaves no digits to draw");
  for (int attempt = 0;; ++attempt) {
    SubscriptionSpec spec;
    spec.id = id;
    spec.operator_id = numbering.operator_id;
    spec.iccid = numbering.iccid_prefix + MCIMD_TRY(random_digits(kIccidDigits - numbering.iccid_prefix.size()));
    spec.imsi = numbering.operator_id + MCIMD_TRY(random_digits(kImsiDigits - numbering.operator_id.size()));
    auto created = registry.create_subscription(spec, now);
    if (created || created.error().code != Code::AlreadyExists || attempt + 1 >= kMaxNumberDraws) return created;
    // An id already taken stays taken: only a clash of the drawn numbers is worth another draw.
    if (id && MCIMD_TRY(registry.find_subscription(*id))) return created;
  }
}

namespace {
// The credentials a package carries for a subscription, its keys taken from the AuC record.
McimCredentials credentials_of(const Subscription& sub, AucRecord&& record) {
  McimCredentials mcim;
  mcim.iccid = sub.iccid;
  mcim.imsi = sub.imsi;
  mcim.k = std::move(record.k);
  mcim.opc = std::move(record.opc);
  return mcim;
}
}  // namespace

Result<McimCredentials> new_auc_record(const std::filesystem::path& auc_dir, const Subscription& sub) {
  AucRecord record{sub.iccid, sub.imsi, SecureBytes(kAucKeySize), SecureBytes(kAucKeySize)};
  if (RAND_priv_bytes(record.k.data(), kAucKeySize) != 1 || RAND_priv_bytes(record.opc.data(), kAucKeySize) != 1)
    return fail(Code::Internal, "the random generator failed");
  MCIMD_CHECK(write_auc_record(auc_dir, record));
  return credentials_of(sub, std::move(record));
}

Result<McimCredentials> read_auc_record(const std::filesystem::path& auc_dir, const Subscription& sub) {
  auto record = MCIMD_TRY(read_auc_record(auc_dir, sub.iccid));
  if (record.imsi != sub.imsi)
    return fail(Code::StoreCorrupt, "the AuC record of " + sub.iccid + " names IMSI " + record.imsi +
                                        ", the registry " + sub.imsi);
  return credentials_of(sub, std::move(record));
}

Result<BuiltPackage> make_package(const Registry& registry, const protocol::PackageRequest& request,
                                  std::span<const uint8_t> ak_name, const McimCredentials& mcim,
                                  const PackageIssue& issue, const PolicySigner& signer) {
  PackageOrder order;
  order.package_id = issue.package_id;
  order.operator_id = issue.operator_id;
  // Above what the device accepted from any operator: else it refuses the package as Replayed.
  order.counter = MCIMD_TRY(registry.next_package_counter(ak_name, /*accepted=*/request.counter));
  order.issued = issue.issued;
  order.lifetime = issue.lifetime;
  return build_package(request, mcim, order, signer);
}

Status record_issued_package(const Registry& registry, std::span<const uint8_t> ak_name, const BuiltPackage& built,
                             const McimCredentials& mcim) {
  return registry.record_package(PackageSpec{built.header.package_id, Bytes(ak_name.begin(), ak_name.end()),
                                             built.header.counter, mcim.iccid, mcim.imsi, built.sha256,
                                             built.header.issued, built.header.expires});
}

}  // namespace mcimd::op
