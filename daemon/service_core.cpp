#include "daemon/service_core.hpp"

#include <algorithm>
#include <map>

#include "aka/usim.hpp"
#include "attestation/jws.hpp"
#include "attestation/verifier.hpp"
#include "common/file.hpp"
#include "protocol/quote.hpp"

#include <openssl/sha.h>
#include "common/log.hpp"

namespace mcimd::daemon {

namespace {

api::ProfileInfo to_info(const store::ProfileMetadata& m) {
  return api::ProfileInfo{m.id,
                          m.index,
                          m.iccid,
                          m.imsi,
                          m.operator_id,
                          std::string(store::to_string(m.state)),
                          std::string(store::to_string(m.profile_class))};
}

template <class Array>
Result<Array> to_array(const Bytes& b, std::string_view what) {
  Array a{};
  if (b.size() != a.size())
    return fail(Code::InvalidArgument,
                std::string(what) + " must be " + std::to_string(a.size()) + " bytes, got " + std::to_string(b.size()));
  std::copy(b.begin(), b.end(), a.begin());
  return a;
}

Result<aka::Block> to_block(const SecureBytes& b, std::string_view what) {
  aka::Block a{};
  if (b.size() != a.size()) return fail(Code::StoreCorrupt, std::string(what) + " has the wrong length");
  std::copy(b.begin(), b.end(), a.begin());
  return a;
}

template <class Array>
SecureBytes secure(const Array& a) {
  return SecureBytes(a.begin(), a.end());
}

bool same_info(const api::ProfileInfo& a, const api::ProfileInfo& b) {
  return a.id == b.id && a.iccid == b.iccid && a.imsi == b.imsi && a.operator_id == b.operator_id &&
         a.state == b.state && a.profile_class == b.profile_class;
}

}  // namespace

ServiceCore::ServiceCore(const Config& config) : config_(config), device_(config.tpm.nv_counter_index) {}

ServiceCore::~ServiceCore() { stop(); }

Result<std::unique_ptr<ServiceCore>> ServiceCore::create(sd_event* loop, const Config& config) {
  MCIMD_CHECK(tpm::parse_pcr_selection(config.tpm.pcrs));
  std::unique_ptr<ServiceCore> core(new ServiceCore(config));
  core->worker_ = MCIMD_TRY(TpmWorker::create(loop, config.queue_limit));
  return core;
}

void ServiceCore::stop() {
  if (worker_) worker_->stop();
}

std::string ServiceCore::status_line() const {
  std::size_t enabled = std::count_if(profiles_.begin(), profiles_.end(), [](auto& p) { return p.state == "enabled"; });
  return std::to_string(profiles_.size()) + " profile(s), " + std::to_string(enabled) + " enabled; platform " +
         platform_state_;
}

std::optional<api::ProfileInfo> ServiceCore::find_profile(uint32_t index) const {
  for (auto& p : profiles_)
    if (p.index == index) return p;
  return std::nullopt;
}

Result<std::unique_ptr<tpm::Context>> ServiceCore::open_tpm() {
  tpm::ContextOptions options;
  options.tcti = config_.tpm.tcti;
  options.retry.max_attempts = std::max(1u, config_.tpm.retries);
  auto ctx = MCIMD_TRY(tpm::Context::open(options));
  auto srk = MCIMD_TRY(ctx->srk_public());
  if (device_.store) {
    const auto& pinned = device_.store->pinned_srk();
    if (pinned && *pinned != srk)
      return fail(Code::TpmMismatch,
                  "The TPM's storage root key differs from the one this store was created with "
                  "(another TPM, or a cleared one); the profiles cannot be used here");
  }
  return ctx;
}

ServiceCore::Snapshot ServiceCore::take_snapshot() {
  Snapshot s;
  if (device_.store) {
    for (auto& m : device_.store->profiles()) s.profiles.push_back(to_info(m));
    s.active = device_.store->active().value_or("");
  }
  s.platform_state = std::exchange(device_.platform_state, std::nullopt);
  return s;
}

void ServiceCore::apply(Snapshot s) {
  std::map<uint32_t, const api::ProfileInfo*> before, after;
  for (auto& p : profiles_) before[p.index] = &p;
  for (auto& p : s.profiles) after[p.index] = &p;
  std::vector<api::ProfileInfo> added, changed, removed;
  for (auto& [i, p] : after) {
    auto it = before.find(i);
    if (it == before.end()) added.push_back(*p);
    else if (!same_info(*it->second, *p)) changed.push_back(*p);
  }
  for (auto& [i, p] : before)
    if (!after.count(i)) removed.push_back(*p);
  bool manager = s.active != active_ || (s.platform_state && *s.platform_state != platform_state_);
  profiles_ = std::move(s.profiles);
  active_ = std::move(s.active);
  if (s.platform_state) platform_state_ = *s.platform_state;
  if (!listener_) return;
  for (auto& p : removed) listener_->profile_removed(p);
  for (auto& p : added) listener_->profile_added(p);
  for (auto& p : changed) listener_->profile_changed(p);
  if (manager) listener_->manager_changed();
}

template <class T>
void ServiceCore::run_job(std::function<Result<T>(tpm::Context&, store::Store&)> fn, api::Reply<T> reply) {
  auto snapshot = std::make_shared<Snapshot>();
  auto st = worker_->submit<T>(
      [this, fn = std::move(fn), snapshot]() -> Result<T> {
        auto result = [&]() -> Result<T> {
          if (!device_.store) return fail(Code::InvalidState, "The store is not open");
          auto ctx = MCIMD_TRY(open_tpm());
          CounterAttachment attached(device_.counter, *ctx);
          auto r = fn(*ctx, *device_.store);
          if (ctx->live_handles() != 0)
            log::debug("TPM job left " + std::to_string(ctx->live_handles()) + " handle(s) loaded");
          return r;
        }();
        if (!result && result.error().code == Code::PlatformStateChanged) device_.platform_state = "changed";
        *snapshot = take_snapshot();
        return result;
      },
      [this, reply, snapshot](Result<T> r) {
        apply(std::move(*snapshot));
        reply(std::move(r));
      });
  if (!st) reply(tl::unexpected(st.error()));
}

void ServiceCore::start(std::function<void(Status)> done) {
  auto snapshot = std::make_shared<Snapshot>();
  auto st = worker_->submit<std::monostate>(
      [this, snapshot]() -> Result<std::monostate> {
        auto r = [&]() -> Result<std::monostate> {
          auto ctx = MCIMD_TRY(open_tpm());
          // Another (or a cleared) TPM first: its NV counter means nothing for this store, so
          // judging the store by it would only give a misleading rollback error.
          auto srk_now = MCIMD_TRY(ctx->srk_public());
          auto pinned = MCIMD_TRY(store::Store::pinned_srk_at(config_.store));
          if (pinned && *pinned != srk_now)
            return fail(Code::TpmMismatch,
                        "The TPM's storage root key differs from the one pinned in the store "
                        "(another TPM, or a cleared one); the profiles cannot be used here");
          if (config_.tpm.key_protection == "tpm-aes") {
            auto supported = ctx->check_encrypt_decrypt_support();
            if (!supported)
              return fail(supported.error().code,
                          supported.error().message + " (set tpm.key-protection: sealed to keep K sealed instead)");
          }
          CounterAttachment attached(device_.counter, *ctx);
          device_.store.emplace(MCIMD_TRY(store::Store::open(config_.store, device_.counter)));
          if (!device_.store->pinned_srk()) MCIMD_CHECK(device_.store->pin_srk(srk_now));
          return std::monostate{};
        }();
        *snapshot = take_snapshot();
        return r;
      },
      [this, done, snapshot](Result<std::monostate> r) {
        apply(std::move(*snapshot));
        if (r) done({});
        else done(tl::unexpected(r.error()));
      });
  if (!st) done(st);
}

Result<store::Profile> ServiceCore::usable_profile(store::Store& st, const std::string& id) {
  auto profile = MCIMD_TRY(st.profile(id));
  if (profile.meta.state != store::ProfileState::Enabled)
    return fail(Code::InvalidState, "Profile " + id + " is disabled");
  return profile;
}

template <class T>
Result<T> ServiceCore::with_credentials(tpm::Context& tpm, const store::Profile& profile,
                                        const std::function<Result<T>(aka::BlockCipher&, const aka::Block&)>& fn) {
  auto pcrs = MCIMD_TRY(tpm::parse_pcr_selection(profile.meta.pcr_policy));
  auto opc_secret = MCIMD_TRY(tpm.unseal(tpm::KeyBlob{profile.opc.public_area, profile.opc.private_area}, pcrs));
  auto opc = MCIMD_TRY(to_block(opc_secret, "OPc"));
  tpm::KeyBlob k_blob{profile.k.public_area, profile.k.private_area};
  auto result = [&]() -> Result<T> {
    if (profile.meta.key_protection == store::KeyProtection::Sealed) {
      auto k = MCIMD_TRY(tpm.unseal(k_blob, pcrs));
      auto cipher = MCIMD_TRY(aka::OpenSslAes::create(k));
      return fn(cipher, opc);
    }
    auto key = MCIMD_TRY(tpm.load_aes_key(k_blob, pcrs));
    TpmAesCipher cipher(key);
    return fn(cipher, opc);
  }();
  wipe(opc.data(), opc.size());
  if (result) device_.platform_state = "trusted";
  return result;
}

void ServiceCore::install_profile(SecureString yaml, api::Reply<api::ProfileInfo> reply) {
  auto text = std::make_shared<SecureString>(std::move(yaml));
  run_job<api::ProfileInfo>(
      [this, text](tpm::Context& tpm, store::Store& st) -> Result<api::ProfileInfo> {
        auto factory = MCIMD_TRY(store::parse_factory_profile(std::string_view(text->data(), text->size())));
        for (auto& m : st.profiles())
          if (m.iccid == factory.iccid)
            return fail(Code::AlreadyExists, "A profile with ICCID " + factory.iccid + " is installed already");
        auto pcrs = MCIMD_TRY(tpm::parse_pcr_selection(config_.tpm.pcrs));
        tpm::SealOptions seal{pcrs, /*no_da=*/true};
        const bool sealed_k = config_.tpm.key_protection == "sealed";
        // K goes straight into the TPM: as an AES key object it never comes back out.
        auto k_blob = MCIMD_TRY(sealed_k ? tpm.seal(factory.k, seal) : tpm.create_aes_key(factory.k, seal));
        SecureBytes opc;
        if (factory.opc) {
          opc = *factory.opc;
        } else {
          // OPc = E_K(OP) ⊕ OP (TS 35.206 §4.1), with the TPM-held K where it is an AES object.
          auto op = MCIMD_TRY(to_block(*factory.op, "OP"));
          auto block = MCIMD_TRY([&]() -> Result<aka::Block> {
            if (sealed_k) {
              auto cipher = MCIMD_TRY(aka::OpenSslAes::create(factory.k));
              return aka::compute_opc(cipher, op);
            }
            auto key = MCIMD_TRY(tpm.load_aes_key(k_blob, pcrs));
            TpmAesCipher cipher(key);
            return aka::compute_opc(cipher, op);
          }());
          opc.assign(block.begin(), block.end());
          wipe(block.data(), block.size());
          wipe(op.data(), op.size());
        }
        wipe(factory.k.data(), factory.k.size());
        auto opc_blob = MCIMD_TRY(tpm.seal(opc, seal));
        auto sqns = MCIMD_TRY(aka::SqnArray::create(factory.sqn));
        sqns.seed(factory.initial_sqn);
        store::Profile profile;
        profile.meta = st.new_metadata();
        profile.meta.iccid = factory.iccid;
        profile.meta.imsi = factory.imsi;
        profile.meta.operator_id = factory.operator_id;
        profile.meta.profile_class = factory.profile_class;
        profile.meta.amf = factory.amf;
        profile.meta.sqn = factory.sqn;
        profile.meta.pcr_policy = tpm::to_string(pcrs);
        profile.meta.key_protection = sealed_k ? store::KeyProtection::Sealed : store::KeyProtection::TpmAes;
        profile.meta.state = st.active() ? store::ProfileState::Disabled : store::ProfileState::Enabled;
        profile.k = store::Blob{k_blob.public_area, k_blob.private_area};
        profile.opc = store::Blob{opc_blob.public_area, opc_blob.private_area};
        MCIMD_CHECK(st.add_profile(profile, sqns));
        if (!st.active()) MCIMD_CHECK(st.set_active(profile.meta.id));
        log::info("Installed profile " + profile.meta.id + " (ICCID " + profile.meta.iccid + ")");
        return to_info(profile.meta);
      },
      std::move(reply));
}

void ServiceCore::enable_profile(const std::string& id, api::Reply<void> reply) {
  run_job<void>(
      [id](tpm::Context&, store::Store& st) -> Status {
        MCIMD_CHECK(st.profile(id));
        // One MCIM serves the modem at a time: enabling a profile disables the active one.
        auto previous = st.active();
        if (previous && *previous != id) MCIMD_CHECK(st.set_state(*previous, store::ProfileState::Disabled));
        MCIMD_CHECK(st.set_state(id, store::ProfileState::Enabled));
        MCIMD_CHECK(st.set_active(id));
        log::info("Enabled profile " + id);
        return {};
      },
      std::move(reply));
}

void ServiceCore::disable_profile(const std::string& id, api::Reply<void> reply) {
  run_job<void>(
      [id](tpm::Context&, store::Store& st) -> Status {
        MCIMD_CHECK(st.profile(id));
        MCIMD_CHECK(st.set_state(id, store::ProfileState::Disabled));
        if (st.active() == id) MCIMD_CHECK(st.set_active(std::nullopt));
        log::info("Disabled profile " + id);
        return {};
      },
      std::move(reply));
}

void ServiceCore::delete_profile(const std::string& id, api::Reply<void> reply) {
  run_job<void>(
      [id](tpm::Context&, store::Store& st) -> Status {
        auto profile = MCIMD_TRY(st.profile(id));
        if (profile.meta.state == store::ProfileState::Enabled)
          return fail(Code::InvalidState, "Profile " + id + " is enabled; disable it before deleting it");
        MCIMD_CHECK(st.remove_profile(id));
        log::info("Deleted profile " + id);
        return {};
      },
      std::move(reply));
}

Result<api::UmtsAuthResult> ServiceCore::do_umts(tpm::Context& tpm, store::Store& st, const std::string& id,
                                                 const Bytes& rand_bytes, const Bytes& autn_bytes) {
  auto rand = MCIMD_TRY(to_array<aka::Rand>(rand_bytes, "RAND"));
  auto autn = MCIMD_TRY(to_array<aka::Autn>(autn_bytes, "AUTN"));
  auto profile = MCIMD_TRY(usable_profile(st, id));
  auto sqns = MCIMD_TRY(st.sqn_array(id));
  auto outcome = MCIMD_TRY(with_credentials<aka::UmtsOutcome>(
      tpm, profile, [&](aka::BlockCipher& k, const aka::Block& opc) {
        return aka::usim_authenticate(k, opc, sqns, rand, autn);
      }));
  api::UmtsAuthResult result;
  if (auto* ok = std::get_if<aka::UmtsSuccess>(&outcome)) {
    // The SQN is persisted before RES leaves the daemon: a crash here can never let the same
    // AUTN be accepted twice with its RES already out.
    MCIMD_CHECK(st.save_sqn_array(id, sqns));
    result.res = secure(ok->res);
    result.ck = secure(ok->ck);
    result.ik = secure(ok->ik);
    wipe(&*ok, sizeof *ok);
    log::debug("AKA for " + id + " succeeded");
  } else {
    auto& sync = std::get<aka::UmtsSyncFailure>(outcome);
    result.auts = Bytes(sync.auts.begin(), sync.auts.end());
    log::info("AKA for " + id + ": sequence number out of range, answering with AUTS for resynchronisation");
  }
  return result;
}

void ServiceCore::umts_authenticate(const std::string& id, Bytes rand, Bytes autn,
                                    api::Reply<api::UmtsAuthResult> reply) {
  run_job<api::UmtsAuthResult>(
      [this, id, rand = std::move(rand), autn = std::move(autn)](tpm::Context& tpm, store::Store& st) {
        return do_umts(tpm, st, id, rand, autn);
      },
      std::move(reply));
}

void ServiceCore::ims_authenticate(const std::string& id, Bytes rand, Bytes autn,
                                   api::Reply<api::UmtsAuthResult> reply) {
  // The ISIM runs the same AKA (TS 33.203 §6.1) over the same MCIM credentials.
  umts_authenticate(id, std::move(rand), std::move(autn), std::move(reply));
}

void ServiceCore::gsm_authenticate(const std::string& id, std::vector<Bytes> rands,
                                   api::Reply<std::vector<api::GsmAuthResult>> reply) {
  run_job<std::vector<api::GsmAuthResult>>(
      [this, id, rands = std::move(rands)](tpm::Context& tpm,
                                           store::Store& st) -> Result<std::vector<api::GsmAuthResult>> {
        std::vector<aka::Rand> parsed;
        for (auto& r : rands) parsed.push_back(MCIMD_TRY(to_array<aka::Rand>(r, "RAND")));
        auto profile = MCIMD_TRY(usable_profile(st, id));
        return with_credentials<std::vector<api::GsmAuthResult>>(
            tpm, profile, [&](aka::BlockCipher& k, const aka::Block& opc) -> Result<std::vector<api::GsmAuthResult>> {
              std::vector<api::GsmAuthResult> out;
              for (auto& rand : parsed) {
                auto triplet = MCIMD_TRY(aka::gsm_authenticate(k, opc, rand));
                out.push_back(api::GsmAuthResult{secure(triplet.sres), secure(triplet.kc)});
                wipe(&triplet, sizeof triplet);
              }
              return out;
            });
      },
      std::move(reply));
}

}  // namespace mcimd::daemon

namespace mcimd::daemon {

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

Result<tpm::KeyBlob> ServiceCore::attestation_key(tpm::Context& tpm) {
  if (device_.ak) return *device_.ak;
  auto dir = config_.store / "attestation";
  auto pub = read_file(dir / "ak.pub", 64 * 1024);
  auto priv = read_file(dir / "ak.priv", 64 * 1024);
  if (pub && priv) {
    device_.ak = tpm::KeyBlob{std::move(*pub), std::move(*priv)};
    return *device_.ak;
  }
  if (!pub && pub.error().code != Code::NotFound) return tl::unexpected(pub.error());
  if (!priv && priv.error().code != Code::NotFound) return tl::unexpected(priv.error());
  auto ak = MCIMD_TRY(tpm.create_ak());
  MCIMD_CHECK(make_private_dir(dir));
  // The private part first: a public file alone is never taken for a key.
  MCIMD_CHECK(write_file_atomic(dir / "ak.priv", ak.private_area));
  MCIMD_CHECK(write_file_atomic(dir / "ak.pub", ak.public_area));
  log::info("Created the attestation key");
  device_.ak = ak;
  return ak;
}

void ServiceCore::get_endorsement(const std::string& ek_type, api::Reply<api::EndorsementData> reply) {
  run_job<api::EndorsementData>(
      [this, ek_type](tpm::Context& tpm, store::Store&) -> Result<api::EndorsementData> {
        auto type = MCIMD_TRY(parse_ek_type(ek_type));
        auto ak = MCIMD_TRY(attestation_key(tpm));
        auto request = MCIMD_TRY(attestation::enrolment_request(tpm, ak, type));
        return api::EndorsementData{std::move(request.ek_public), std::move(request.ek_certificate),
                                    std::move(request.ak_public)};
      },
      std::move(reply));
}

void ServiceCore::activate_credential(const std::string& ek_type, Bytes credential_blob, Bytes encrypted_secret,
                                      api::Reply<SecureBytes> reply) {
  run_job<SecureBytes>(
      [this, ek_type, blob = std::move(credential_blob), secret = std::move(encrypted_secret)](
          tpm::Context& tpm, store::Store&) -> Result<SecureBytes> {
        auto type = MCIMD_TRY(parse_ek_type(ek_type));
        auto ak = MCIMD_TRY(attestation_key(tpm));
        return attestation::activate_credential(tpm, ak, type, protocol::CredentialChallenge{blob, secret});
      },
      std::move(reply));
}

void ServiceCore::get_evidence(Bytes nonce, api::Reply<std::string> reply) {
  run_job<std::string>(
      [this, nonce = std::move(nonce)](tpm::Context& tpm, store::Store&) -> Result<std::string> {
        MCIMD_CHECK(check_nonce(nonce));
        auto ak = MCIMD_TRY(attestation_key(tpm));
        auto options = evidence_options();
        // The certificate of the EK type the operator enrolled.
        options.ek_type = MCIMD_TRY(attestation::enrolled_ek_type(config_.store / "attestation"))
                              .value_or(tpm::EkType::EccP256);
        auto evidence = MCIMD_TRY(attestation::collect_evidence(tpm, ak, nonce, options));
        return protocol::to_json(evidence);
      },
      std::move(reply));
}

void ServiceCore::validate_platform(std::string signed_policy, Bytes nonce, api::Reply<api::PlatformReport> reply) {
  run_job<api::PlatformReport>(
      [this, jws = std::move(signed_policy), nonce = std::move(nonce)](tpm::Context& tpm,
                                                                       store::Store&) -> Result<api::PlatformReport> {
        MCIMD_CHECK(check_nonce(nonce));
        if (config_.attestation.policy_trust.empty())
          return fail(Code::Unsupported, "No operator is trusted to sign reference policies (attestation.policy-trust)");
        auto trust = MCIMD_TRY(attestation::CaBundle::load(config_.attestation.policy_trust));
        auto ak = MCIMD_TRY(attestation_key(tpm));
        attestation::PlatformValidationOptions options{jws, nonce, evidence_options()};
        auto validation = MCIMD_TRY(attestation::validate_platform(tpm, ak, trust, options));
        const bool trusted = validation.report.trusted;
        log::info(std::string("Semi-autonomous validation: platform ") + (trusted ? "trusted" : "not trusted"));
        device_.platform_state = trusted ? "trusted" : "changed";
        return api::PlatformReport{std::move(validation.report_json), std::move(validation.quote.message),
                                   std::move(validation.quote.signature)};
      },
      std::move(reply));
}

}  // namespace mcimd::daemon
