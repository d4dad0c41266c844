// Attestation: endorsement data, credential activation, evidence and semi-autonomous validation.
#include "attestation/verifier.hpp"
#include "common/file.hpp"
#include "common/log.hpp"

#include "daemon/service_core.hpp"
#include "daemon/service_helpers.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

namespace {

Result<tpm::EkType> parse_ek_type(const std::string& s) {
  if (s == "ecc") return tpm::EkType::EccP256;
  if (s == "rsa") return tpm::EkType::Rsa2048;
  return fail(Code::InvalidArgument, "EK type '" + s + "' is not ecc or rsa");
}

Status check_nonce(const Bytes& nonce) {
  // TPM2_Quote's qualifyingData is a TPM2B_DATA: at most 64 bytes (TPM 2.0 Part 2 §10.4.3).
  if (nonce.empty() || nonce.size() > 64)
    return fail(Code::InvalidArgument, "The nonce must be 1 to 64 bytes, got " + std::to_string(nonce.size()));
  return {};
}

}  // namespace

attestation::EvidenceOptions ServiceCore::evidence_options() const {
  attestation::EvidenceOptions o;
  if (!config_.attestation.pcrs.empty()) o.pcrs = config_.attestation.pcrs;
  o.event_log_path = config_.attestation.event_log;
  o.ima_log_path = config_.attestation.ima_log;
  return o;
}

Result<tpm::KeyBlob> ServiceCore::attestation_key(Device& d) {
  // The store makes the key when it first unlocks (Device::unlock).
  auto verified = d.approved([&]() -> Result<tpm::KeyBlob> {
    auto record = MCIMD_TRY(d.store()->attestation());
    if (!record) return fail(Code::StoreCorrupt, "The store holds no attestation key");
    return tpm::KeyBlob{record->ak.public_area, record->ak.private_area};
  });
  if (verified) return verified;
  if (verified.error().code != Code::PlatformStateChanged && verified.error().code != Code::InvalidState)
    return tl::unexpected(verified.error());
  // Locked: the key store.json names, unverified. That is safe to use: the TPM checks the blob's
  // integrity when loading it, and the operator checks the key is the one it enrolled.
  auto hint = MCIMD_TRY(store::Store::attestation_at(config_.store));
  if (hint) return tpm::KeyBlob{hint->ak.public_area, hint->ak.private_area};
  return fail(Code::InvalidState, "There is no attestation key yet; it is made in the store, which opens once a "
                                  "signed PCR policy approves the platform (" + verified.error().message + ")");
}

Result<tpm::EkType> ServiceCore::enrolled_ek_type(Device& d) {
  std::optional<store::AttestationRecord> record;
  if (d.unlocked()) record = MCIMD_TRY(d.store()->attestation());
  else record = MCIMD_TRY(store::Store::attestation_at(config_.store));
  if (record && record->enrolled_ek_type) return parse_ek_type(*record->enrolled_ek_type);
  return tpm::EkType::EccP256;
}

void ServiceCore::get_endorsement(const std::string& ek_type, api::Reply<api::EndorsementData> reply) {
  run_job<api::EndorsementData>(
      [this, ek_type](Device& d) -> Result<api::EndorsementData> {
        auto type = MCIMD_TRY(parse_ek_type(ek_type));
        auto ak = MCIMD_TRY(attestation_key(d));
        auto request = MCIMD_TRY(attestation::enrolment_request(*MCIMD_TRY(d.tpm()), ak, type));
        return api::EndorsementData{std::move(request.ek_public), std::move(request.ek_certificate),
                                    std::move(request.ak_public)};
      },
      std::move(reply));
}

void ServiceCore::activate_credential(const std::string& ek_type, Bytes credential_blob, Bytes encrypted_secret,
                                      api::Reply<SecureBytes> reply) {
  run_job<SecureBytes>(
      [this, ek_type, blob = std::move(credential_blob), secret = std::move(encrypted_secret)](
          Device& d) -> Result<SecureBytes> {
        auto type = MCIMD_TRY(parse_ek_type(ek_type));
        auto ak = MCIMD_TRY(attestation_key(d));
        auto released = MCIMD_TRY(attestation::activate_credential(*MCIMD_TRY(d.tpm()), ak, type,
                                                                    protocol::CredentialChallenge{blob, secret}));
        // The operator enrolled this EK: evidence carries its certificate from now on.
        if (d.unlocked()) {
          auto record = MCIMD_TRY(d.store()->attestation());
          if (record && record->enrolled_ek_type != ek_type) {
            record->enrolled_ek_type = ek_type;
            MCIMD_CHECK(d.store()->set_attestation(*record));
          }
        }
        return released;
      },
      std::move(reply));
}

void ServiceCore::get_evidence(Bytes nonce, api::Reply<std::string> reply) {
  run_job<std::string>(
      [this, nonce = std::move(nonce)](Device& d) -> Result<std::string> {
        MCIMD_CHECK(check_nonce(nonce));
        auto ak = MCIMD_TRY(attestation_key(d));
        auto options = evidence_options();
        options.ek_type = MCIMD_TRY(enrolled_ek_type(d));
        auto evidence = MCIMD_TRY(attestation::collect_evidence(*MCIMD_TRY(d.tpm()), ak, nonce, options));
        return protocol::to_json(evidence);
      },
      std::move(reply));
}

void ServiceCore::validate_platform(std::string signed_policy, Bytes nonce, api::Reply<api::PlatformReport> reply) {
  run_job<api::PlatformReport>(
      [this, jws = std::move(signed_policy), nonce = std::move(nonce)](Device& d) -> Result<api::PlatformReport> {
        MCIMD_CHECK(check_nonce(nonce));
        if (config_.attestation.policy_trust.empty())
          return fail(Code::Unsupported, "No operator is trusted to sign reference policies (attestation.policy-trust)");
        auto trust = MCIMD_TRY(attestation::CaBundle::load(config_.attestation.policy_trust));
        auto ak = MCIMD_TRY(attestation_key(d));
        attestation::PlatformValidationOptions options{jws, nonce, evidence_options()};
        auto validation = MCIMD_TRY(attestation::validate_platform(*MCIMD_TRY(d.tpm()), ak, trust, options));
        const bool trusted = validation.report.trusted;
        log::info(std::string("Semi-autonomous validation: platform ") + (trusted ? "trusted" : "not trusted"));
        return api::PlatformReport{std::move(validation.report_json), std::move(validation.quote.message),
                                   std::move(validation.quote.signature)};
      },
      std::move(reply));
}

}  // namespace mcimd::daemon
