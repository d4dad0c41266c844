// Remote provisioning (TR 33.812 §5.1.3.5): package requests and the install of MCIM packages.
//
// mcimd trusts the package's signature, never the agent that carried it: every check below is
// made on the package itself, against the operators configured (provisioning.operators), this
// TPM (its SRK, its attestation key) and the store (the last accepted package counter).
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <chrono>

#include "attestation/device.hpp"
#include "attestation/package_check.hpp"
#include "common/log.hpp"
#include "protocol/pcr_policy.hpp"
#include "protocol/provisioning.hpp"
#include "protocol/quote_domain.hpp"

#include "daemon/audit.hpp"
#include "daemon/service_core.hpp"
#include "daemon/service_helpers.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

namespace {

// How long mcimd keeps its nonce of a package request: an operator answers within a session, so
// an hour is ample, and a nonce never outlives the daemon (a restart means a new request).
constexpr auto kNonceLifetime = std::chrono::hours(1);
// Outstanding requests kept at once; the oldest is forgotten first.
constexpr std::size_t kMaxOutstandingNonces = 8;
// The one algorithm this mcimd implements (TS 35.206 with its default constants).
const std::vector<std::string> kAlgorithms = {"milenage"};
// Quoted with every receipt: the receipt needs the AK's signature and the TPM's clock, not a PCR
// evaluation, and PCR 7 is in every bank a gateway has.
const tpm::PcrSelection kReceiptPcrs{"sha256", {7}};

Bytes sha256_of(std::string_view text) {
  Bytes digest(SHA256_DIGEST_LENGTH);
  SHA256(reinterpret_cast<const uint8_t*>(text.data()), text.size(), digest.data());
  return digest;
}

tpm::ImportBlob to_tpm(const protocol::ImportBlob& b) { return tpm::ImportBlob{b.public_area, b.duplicate, b.seed}; }

store::ProfileClass class_of(const std::string& name) {
  return name == "bootstrap" ? store::ProfileClass::Bootstrap : store::ProfileClass::Operational;
}

}  // namespace

Result<std::string> ServiceCore::device_id(Device& d) {
  auto ak = MCIMD_TRY(attestation_key(d));
  return to_hex(MCIMD_TRY(tpm::object_name(ak.public_area)));
}

Result<std::vector<attestation::OperatorTrust>> ServiceCore::operator_trust() const {
  std::vector<attestation::OperatorTrust> out;
  for (const auto& op : config_.provisioning.operators) {
    auto anchors = attestation::CaBundle::load({op.anchors});
    if (!anchors)
      return fail(Code::ConfigError, "provisioning.operators: the anchors of operator '" + op.id + "' (" +
                                         op.anchors.string() + "): " + anchors.error().message);
    out.push_back(attestation::OperatorTrust{op.id, std::move(*anchors)});
  }
  return out;
}

void ServiceCore::request_package(std::string session, Bytes operator_nonce, api::Reply<std::string> reply) {
  run_job<std::string>(
      [this, session = std::move(session), operator_nonce = std::move(operator_nonce)](Device& d) -> Result<std::string> {
        if (operator_nonce.size() != protocol::kProvisioningNonceSize)
          return fail(Code::InvalidArgument, "The operator's nonce must be " +
                                                 std::to_string(protocol::kProvisioningNonceSize) + " bytes");
        return d.approved([&]() -> Result<std::string> {
          auto* tpm = MCIMD_TRY(d.tpm());
          auto ak = MCIMD_TRY(attestation_key(d));
          protocol::PackageRequest request;
          request.session = session;
          request.device = to_hex(MCIMD_TRY(tpm::object_name(ak.public_area)));
          request.operator_nonce = operator_nonce;
          request.device_nonce.resize(protocol::kProvisioningNonceSize);
          if (RAND_bytes(request.device_nonce.data(), static_cast<int>(request.device_nonce.size())) != 1)
            return fail(Code::Internal, "The random generator failed to make a nonce");
          request.counter = d.store()->last_package_counter();
          request.srk_public = MCIMD_TRY(tpm->srk_public());
          // The SRK is the key the operator encrypts K and OPc to: certified by the enrolled AK
          // over both nonces, so neither an old certification nor another TPM's SRK passes.
          Bytes both = operator_nonce;
          both.insert(both.end(), request.device_nonce.begin(), request.device_nonce.end());
          auto certification = MCIMD_TRY(
              tpm->certify_srk(ak, protocol::qualifying_data(protocol::QuoteDomain::SrkCertification, both)));
          request.srk_certification = {std::move(certification.message), std::move(certification.signature)};
          request.authority = MCIMD_TRY(d.policies().authority_public());
          request.algorithms = kAlgorithms;
          auto options = evidence_options();
          options.ek_type = MCIMD_TRY(enrolled_ek_type(d));
          request.evidence = MCIMD_TRY(attestation::collect_evidence(*tpm, ak, operator_nonce, options));
          // The deletion counter of the profile the package will become, set aside now: the
          // operator binds K and OPc to it.
          const auto deletion = MCIMD_TRY(deletion_binding_for(d, d.store()->new_metadata().index));
          request.deletion = protocol::DeletionBinding{deletion.nv_index, deletion.value};
          remember_nonce(request.device_nonce, deletion);
          log::info("Made a package request for session " + session);
          return protocol::to_json(request);
        });
      },
      std::move(reply));
}

void ServiceCore::remember_nonce(const Bytes& nonce, const store::DeletionBinding& deletion) {
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(nonces_, [&](const PendingNonce& n) { return n.expires <= now; });
  if (nonces_.size() >= kMaxOutstandingNonces) nonces_.erase(nonces_.begin());
  nonces_.push_back(PendingNonce{nonce, deletion, now + kNonceLifetime});
}

std::optional<store::DeletionBinding> ServiceCore::reserved_deletion(const Bytes& nonce) const {
  for (const auto& n : nonces_)
    if (n.nonce == nonce) return n.deletion;
  return std::nullopt;
}

std::vector<Bytes> ServiceCore::outstanding_nonces() {
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(nonces_, [&](const PendingNonce& n) { return n.expires <= now; });
  std::vector<Bytes> out;
  for (const auto& n : nonces_) out.push_back(n.nonce);
  return out;
}

void ServiceCore::forget_nonce(const Bytes& nonce) {
  std::erase_if(nonces_, [&](const PendingNonce& n) { return n.nonce == nonce; });
}

Result<tpm::Quote> ServiceCore::quote_in_domain(Device& d, protocol::QuoteDomain domain, std::string_view payload) {
  auto ak = MCIMD_TRY(attestation_key(d));
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
  return attestation::quote_payload(*MCIMD_TRY(d.tpm()), ak, domain, bytes, std::span(&kReceiptPcrs, 1));
}

Result<std::string> ServiceCore::install_receipt(Device& d, const store::InstalledPackage& installed) {
  auto* st = d.store();
  auto profile = MCIMD_TRY(st->profile(installed.profile_id));
  protocol::ReceiptBody body;
  body.package_id = installed.package_id;
  body.device = MCIMD_TRY(device_id(d));
  body.counter = installed.counter;
  body.package_sha256 = installed.package_sha256;
  body.iccid = profile.meta.iccid;
  body.profile = profile.meta.index;
  body.profile_class = std::string(store::to_string(profile.meta.profile_class));
  protocol::InstallReceipt receipt;
  receipt.body = protocol::to_json(body);
  auto quote = MCIMD_TRY(quote_in_domain(d, protocol::QuoteDomain::InstallReceipt, receipt.body));
  receipt.quote_message = std::move(quote.message);
  receipt.quote_signature = std::move(quote.signature);
  return protocol::to_json(receipt);
}

Result<ServiceCore::CheckedPackage> ServiceCore::check_package(Device& d, const std::string& package) {
  auto* st = d.store();
  CheckedPackage out;
  out.digest = sha256_of(package);

  // 1. The package itself: signature, chain to the operator it names, purpose, expiry.
  const auto operators = MCIMD_TRY(operator_trust());
  auto verified = MCIMD_TRY(attestation::verify_package(package, operators, now_utc()));
  const protocol::PackageHeader& h = verified.header;
  // 2. Made for this device, this request, this TPM, this authority, an algorithm we have.
  auto* tpm = MCIMD_TRY(d.tpm());
  const auto nonces = outstanding_nonces();
  attestation::DeviceExpectations expect;
  expect.device = MCIMD_TRY(device_id(d));
  expect.outstanding_nonces = nonces;
  expect.last_counter = st->last_package_counter();
  expect.srk_name = MCIMD_TRY(tpm::object_name(MCIMD_TRY(tpm->srk_public())));
  expect.authority_name = MCIMD_TRY(d.policies().authority_name());
  expect.algorithms = kAlgorithms;
  MCIMD_CHECK(attestation::check_package_for_device(h, expect));
  // A new profile's ICCID is new here; a re-key's is the installed profile's it re-keys.
  bool installed = false;
  for (const auto& m : st->profiles()) {
    if (m.iccid != h.iccid) continue;
    installed = true;
    if (!h.rekey)
      return fail(Code::AlreadyExists, "A profile with ICCID " + h.iccid + " is installed already (" + m.id + ")");
  }
  if (h.rekey && !installed)
    return fail(Code::NotFound, "The package re-keys the profile with ICCID " + h.iccid + ", which is not installed");
  // The deletion counter set aside for this request, still at its value and nobody's.
  const auto reserved = reserved_deletion(h.device_nonce);
  if (!reserved) return fail(Code::Replayed, "The package answers no outstanding request");
  const store::DeletionBinding deletion = *reserved;
  if (h.deletion.nv_index != deletion.nv_index || h.deletion.value != deletion.value)
    return fail(Code::InvalidArgument, "The package is not bound to the deletion counter its request set aside");
  if (MCIMD_TRY(deletion_binding_for(d, deletion.nv_index - config_.tpm.deletion_counter_base)) != deletion)
    return fail(Code::InvalidState, "The deletion counter set aside for this package has moved on; request a "
                                    "new package");

  // 3. K and OPc into this TPM: TPM2_Import under the SRK. Nothing persists in the TPM; until
  // the caller's commit nothing has changed.
  auto k = MCIMD_TRY(tpm->import_object(to_tpm(h.k)));
  auto opc = MCIMD_TRY(tpm->import_object(to_tpm(h.opc)));
  const Bytes auth_policy = MCIMD_TRY(d.policies().auth_policy(deletion));
  for (const auto& [blob, kind] : {std::pair{&k, tpm::PublicInfo::Kind::AesKey},
                                   std::pair{&opc, tpm::PublicInfo::Kind::SealedData}}) {
    auto info = MCIMD_TRY(tpm::describe_public(blob->public_area));
    if (info.auth_policy != auth_policy)
      return fail(Code::NotAuthorized, "The package's objects are not bound to this gateway's policy "
                                       "authority and the profile's deletion counter (PolicyAuthorize, "
                                       "PolicyNV)");
    if (info.kind != kind)
      return fail(Code::InvalidArgument, "The package's K must be an AES key object and its OPc sealed data");
  }

  // 4. The profile as it will be stored.
  store::Profile& profile = out.profile;
  profile.meta = st->new_metadata();
  profile.meta.iccid = h.iccid;
  profile.meta.imsi = h.imsi;
  profile.meta.operator_id = verified.operator_id;
  profile.meta.profile_class = class_of(h.profile_class);
  profile.meta.key_protection = store::KeyProtection::TpmAes;
  profile.meta.algorithm = h.algorithm;
  profile.meta.amf = h.amf;
  profile.meta.sqn = aka::SqnParameters{h.sqn.ind_bits, h.sqn.delta, h.sqn.age_limit, h.sqn.require_amf_separation};
  profile.meta.authority = expect.authority_name;
  profile.meta.rules.disable_allowed = h.rules.disable_allowed;
  profile.meta.rules.delete_allowed = h.rules.delete_allowed;
  profile.meta.rules.fallback_allowed = h.rules.fallback_allowed;
  if (h.rules.locked_until)
    profile.meta.rules.locked_until = static_cast<uint64_t>(h.rules.locked_until->time_since_epoch().count());
  profile.meta.origin = store::PackageOrigin{h.package_id, h.counter, out.digest};
  profile.meta.deletion = deletion;
  profile.meta.subscriber_key = h.subscriber_key;
  profile.k = store::Blob{k.public_area, k.private_area};
  profile.opc = store::Blob{opc.public_area, opc.private_area};
  out.sqns.emplace(MCIMD_TRY(aka::SqnArray::create(profile.meta.sqn)));
  out.sqns->seed(h.sqn.initial);
  out.record = store::InstalledPackage{h.package_id, out.digest, h.counter, profile.meta.id};
  out.header = h;
  return out;
}

std::optional<Result<api::PackageInstall>> ServiceCore::installed_already(Device& d, const std::string& package) {
  auto* st = d.store();
  const Bytes digest = sha256_of(package);
  // The same package again (an agent resuming after a crash between our commit and its
  // receipt): it was verified when installed, so the receipt is made again, nothing changes.
  for (const auto& done : st->installed_packages()) {
    if (done.package_sha256 != digest) continue;
    return [&]() -> Result<api::PackageInstall> {
      auto profile = MCIMD_TRY(st->profile(done.profile_id));
      log::info("Package " + done.package_id + " was installed already as profile " + done.profile_id +
                "; answering its receipt again");
      auto receipt = MCIMD_TRY(install_receipt(d, done));
      return api::PackageInstall{to_info(profile.meta), std::move(receipt)};
    }();
  }
  return std::nullopt;
}

void ServiceCore::install_package(std::string package, api::Reply<api::PackageInstall> reply) {
  run_job<api::PackageInstall>(
      [this, package = std::move(package)](Device& d) -> Result<api::PackageInstall> {
        return d.approved([&]() -> Result<api::PackageInstall> {
          auto* st = d.store();
          if (auto again = installed_already(d, package)) return std::move(*again);
          auto checked = MCIMD_TRY(check_package(d, package));
          if (checked.header.rekey) return install_rekey(d, checked);
          store::Profile& profile = checked.profile;
          // A device another operator's MCIM is installed on moves only with that operator's
          // release (ChangeSubscription): a new operator cannot migrate it by installing beside
          // or over it, in service or not (after a fallback to the bootstrap profile too).
          if (profile.meta.profile_class == store::ProfileClass::Operational)
            for (const auto& other : st->profiles()) {
              if (other.profile_class != store::ProfileClass::Operational ||
                  other.operator_id == profile.meta.operator_id)
                continue;
              Error e{Code::NotAuthorized, "Profile " + other.id + " of operator " + other.operator_id +
                                               " is installed: a package of operator " + profile.meta.operator_id +
                                               " installs only as a change of subscription, with operator " +
                                               other.operator_id + "'s release"};
              audit_refusal("change-of-subscription", other.id, profile.meta.operator_id, e);
              return tl::unexpected(std::move(e));
            }
          const bool switch_to = profile.meta.profile_class == store::ProfileClass::Operational || !st->active();
          if (switch_to) profile.meta.state = store::ProfileState::Enabled;
          auto tx = MCIMD_TRY(st->begin());
          MCIMD_CHECK(tx.add_profile(profile, *checked.sqns));
          if (switch_to) {
            if (auto previous = st->active()) MCIMD_CHECK(tx.set_state(*previous, store::ProfileState::Disabled));
            MCIMD_CHECK(tx.set_active(profile.meta.id));
          }
          MCIMD_CHECK(tx.record_package(checked.record));
          MCIMD_CHECK(tx.commit());
          forget_nonce(checked.header.device_nonce);
          d.drop_credentials();
          log::info("Installed package " + checked.header.package_id + " of operator " + profile.meta.operator_id +
                    " as profile " + profile.meta.id + (switch_to ? " (now active)" : ""));

          // 5. The receipt, quoted by the AK in the install-receipt domain.
          auto installed = MCIMD_TRY(st->profile(profile.meta.id));
          auto receipt = MCIMD_TRY(install_receipt(d, checked.record));
          return api::PackageInstall{to_info(installed.meta), std::move(receipt)};
        });
      },
      std::move(reply));
}

Result<api::PackageInstall> ServiceCore::install_rekey(Device& d, CheckedPackage& checked) {
  auto* st = d.store();
  const protocol::PackageHeader& h = checked.header;
  store::ProfileMetadata target;
  for (const auto& m : st->profiles())
    if (m.iccid == h.iccid) target = m;
  // Only the profile's own operator changes its credentials, one re-key at a time.
  if (target.operator_id != checked.profile.meta.operator_id)
    return fail(Code::NotAuthorized, "Profile " + target.id + " belongs to operator " + target.operator_id +
                                         ": operator " + checked.profile.meta.operator_id + " cannot re-key it");
  if (target.previous)
    return fail(Code::InvalidState, "Profile " + target.id + "'s last re-key has not authenticated yet");
  const store::Profile& fresh = checked.profile;
  checked.record.profile_id = target.id;
  auto tx = MCIMD_TRY(st->begin());
  MCIMD_CHECK(tx.rekey(target.id, store::NewCredentials{fresh.k, fresh.opc, fresh.meta.deletion, fresh.meta.algorithm,
                                                        fresh.meta.key_protection}));
  MCIMD_CHECK(tx.record_package(checked.record));
  MCIMD_CHECK(tx.commit());
  forget_nonce(h.device_nonce);
  d.drop_credentials();
  log::info("Re-keyed profile " + target.id + " with package " + h.package_id + " of operator " +
            target.operator_id + "; its previous credentials are kept until the new ones authenticate");
  auto installed = MCIMD_TRY(st->profile(target.id));
  auto receipt = MCIMD_TRY(install_receipt(d, checked.record));
  return api::PackageInstall{to_info(installed.meta), std::move(receipt)};
}

}  // namespace mcimd::daemon
