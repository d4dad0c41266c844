#include "operator/enrolment.hpp"

#include <openssl/rand.h>

#include "attestation/credential.hpp"
#include "attestation/verifier_tpm.hpp"

namespace mcimd::op {

namespace {

constexpr std::string_view kActivationFailed = "activation failed: the AK is not in the TPM of that EK";

void record(std::vector<attestation::Check>& checks, std::string name, const Status& status,
            std::string passed_reason = {}) {
  checks.push_back({std::move(name), status.has_value(), status ? std::move(passed_reason) : status.error().message});
}

Result<Bytes> sha256(std::span<const uint8_t> data) { return attestation::hash(attestation::alg::kSha256, data); }

}  // namespace

Result<EnrolmentStart> start_enrolment(const Registry& registry, const protocol::EnrolmentRequest& request,
                                       const EnrolmentOptions& options) {
  EnrolmentStart out;
  auto& checks = out.checks;

  auto ak = attestation::parse_tpm_public(request.ak_public);
  if (!ak) {
    record(checks, "ak.public", tl::unexpected(ak.error()));
  } else {
    record(checks, "ak.public", {});
    record(checks, "ak.attributes", attestation::check_attestation_key(*ak), "restricted signing key");
    out.device = device_id(ak->name);
  }

  if (!request.ek_certificate) {
    if (options.allow_uncertified_ek)
      checks.push_back({"ek.chain", true, std::string(kUncertifiedEk), /*not_checked=*/true});
    else
      checks.push_back({"ek.chain", false,
                        "the request carries no EK certificate, so nothing vouches that the EK is in a genuine "
                        "TPM; enrol it anyway only with --allow-uncertified-ek"});
  } else if (!options.ek_cas) {
    checks.push_back({"ek.chain", true, "not checked: no EK CA bundle given (--ca); the certificate is recorded",
                      /*not_checked=*/true});
  } else {
    record(checks, "ek.chain",
           attestation::verify_ek_certificate(*request.ek_certificate, *options.ek_cas,
                                              std::span<const uint8_t>(request.ek_public)),
           "certified by the TPM manufacturer");
  }

  std::optional<DeviceRecord> existing;
  if (ak) {
    existing = MCIMD_TRY(registry.find(ak->name));
    if (existing && existing->ek_public != request.ek_public)
      checks.push_back({"ak.registered", false, "device " + out.device + " is registered with another EK"});
  }

  for (const auto& c : checks)
    if (!c.passed) return out;

  SecureBytes secret(kCredentialSecretSize);
  if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1)
    return fail(Code::Internal, "RAND_bytes: " + attestation::openssl_error());
  auto challenge = attestation::make_credential(request.ek_public, ak->name, secret);
  if (!challenge) {
    checks.push_back({"ek.credential", false, challenge.error().message});
    return out;
  }
  checks.push_back({"ek.credential", true, "credential made for the AK name"});

  DeviceRecord rec = existing ? std::move(*existing) : DeviceRecord{};
  rec.ak_name = ak->name;
  rec.ak_public = request.ak_public;
  rec.ek_public = request.ek_public;
  rec.ek_certificate = request.ek_certificate;
  rec.uncertified_ek = !request.ek_certificate;
  rec.pending_secret_sha256 = MCIMD_TRY(sha256(secret));
  MCIMD_CHECK(registry.store(rec));

  out.challenge = std::move(*challenge);
  out.ok = true;
  return out;
}

Result<std::string> finish_enrolment(const Registry& registry, std::span<const uint8_t> secret,
                                     const std::optional<std::string>& device) {
  const Bytes digest = MCIMD_TRY(sha256(secret));
  std::vector<DeviceRecord> candidates;
  if (device) {
    auto name = from_hex(*device, "device id");
    if (!name) return fail(Code::InvalidArgument, name.error().message);
    auto rec = MCIMD_TRY(registry.find(*name));
    if (!rec) return fail(Code::NotFound, "no device " + *device + " is registered");
    candidates.push_back(std::move(*rec));
  } else {
    candidates = MCIMD_TRY(registry.list());
  }

  // Every candidate is compared (no early exit), so the time taken says nothing about which
  // record came close.
  std::optional<std::size_t> match;
  bool any_pending = false;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    any_pending = any_pending || candidates[i].pending_secret_sha256.has_value();
    const auto& pending = candidates[i].pending_secret_sha256;
    if (pending && equal_ct(*pending, digest) && !match) match = i;
  }
  if (!any_pending)
    return fail(Code::NotFound, device ? "device " + *device + " has no pending enrolment" : "no enrolment is pending");
  if (!match) return fail(Code::NotAuthorized, std::string(kActivationFailed));

  DeviceRecord& rec = candidates[*match];
  rec.enrolled = true;
  rec.pending_secret_sha256.reset();
  MCIMD_CHECK(registry.store(rec));
  return device_id(rec.ak_name);
}

}  // namespace mcimd::op
