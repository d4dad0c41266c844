#include "daemon/device.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <system_error>

#include "common/file.hpp"
#include "common/log.hpp"

namespace mcimd::daemon {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxKeyFile = 64 * 1024;
// Labels of what the store key derives (docs/protocol.md, "The store's keys"): one HMAC in the
// TPM gives the master, two HMACs in software the keys. NUL-terminated so no label prefixes another.
constexpr std::string_view kMasterLabel{"mcimd/store-keys/v1\0", 20};
constexpr std::string_view kMacLabel{"mcimd/store-mac/v1\0", 19};
constexpr std::string_view kNvAuthLabel{"mcimd/nv-counter-auth/v1\0", 25};

std::span<const uint8_t> bytes_of(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

SecureBytes hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  SecureBytes out(32);
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(), out.data(), &len);
  out.resize(len);
  return out;
}

fs::path keys_dir(const Config& c) { return c.store / "keys"; }

}  // namespace

Device::Device(const Config& config)
    : config_(config),
      policies_(config.store / "policies",
                PolicyRules{*tpm::parse_pcr_selection(config.tpm.pcrs), config.tpm.allow_resettable_pcrs}) {}

Device::~Device() {
  // K's handle lives in the context: gone before it.
  credentials_.reset();
  store_.reset();
  ctx_.reset();
}

bool Device::store_exists() const {
  std::error_code ec;
  return fs::exists(config_.store / "store.json", ec);
}

Result<tpm::Context*> Device::tpm() {
  if (ctx_) return ctx_.get();
  tpm::ContextOptions options;
  options.tcti = config_.tpm.tcti;
  options.retry.max_attempts = std::max(1u, config_.tpm.retries);
  auto ctx = MCIMD_TRY(tpm::Context::open(options));
  auto srk = MCIMD_TRY(ctx->srk_public());
  // The pin in a verified store, else the hint in store.json: another (or a cleared) TPM first,
  // before its counter is read, so the error names the real cause.
  std::optional<Bytes> pinned = store_ ? store_->pinned_srk() : MCIMD_TRY(store::Store::pinned_srk_at(config_.store));
  if (pinned && *pinned != srk)
    return fail(Code::TpmMismatch,
                "The TPM's storage root key differs from the one pinned in the store: another TPM, a cleared one, "
                "or a store.json edited by hand; the profiles cannot be used here");
  auto clock = MCIMD_TRY(ctx->read_clock());
  boot_ = store::BootCounts{clock.reset_count, clock.restart_count};
  ctx_ = std::move(ctx);
  return ctx_.get();
}

void Device::after_job() {
  if (!ctx_ || ctx_->usable()) return;
  log::debug("The TPM connection was lost; the next job opens it again");
  lock();
  ctx_.reset();
}

Status Device::load_policies(std::vector<std::string>& skipped) {
  std::optional<protocol::PolicyAuthority> authority;
  if (!config_.tpm.policy_authority.empty())
    authority = MCIMD_TRY(protocol::load_policy_authority(config_.tpm.policy_authority));
  return policies_.load(std::move(authority), skipped);
}

void Device::drop_secrets() {
  unlocked_ = false;
  credentials_.reset();
  if (keys_) {
    wipe(keys_->mac_key.data(), keys_->mac_key.size());
    wipe(keys_->nv_auth.data(), keys_->nv_auth.size());
  }
  keys_.reset();
  policies_.forget_active();
  // The counter's session holds its auth, ESAPI's metadata a copy: both go with the keys.
  if (ctx_) ctx_->drop_sessions();
}

void Device::lock() {
  drop_secrets();
  // The tickets go too: a changed platform selects (and the TPM verifies) a policy afresh, so a
  // ticket the TPM stopped accepting is replaced rather than tried again.
  policies_.forget_tickets();
}

Result<tpm::KeyBlob> Device::store_key(tpm::Context& tpm) {
  const fs::path dir = keys_dir(config_);
  auto pub = read_file(dir / "store-key.pub", kMaxKeyFile);
  auto priv = read_file(dir / "store-key.priv", kMaxKeyFile);
  const Bytes expected_policy = MCIMD_TRY(policies_.auth_policy());
  if (pub && priv) {
    // A key from disk is trusted only as what it claims to be: drawn by the TPM, bound to the
    // configured authority, usable by no other route. The TPM checks the private part on load.
    auto info = tpm::describe_public(*pub);
    if (!info || info->kind != tpm::PublicInfo::Kind::HmacKey || !info->sensitive_data_origin || !info->fixed_tpm ||
        !info->fixed_parent || info->user_with_auth)
      return fail(Code::StoreTampered, (dir / "store-key.pub").string() + " is not the store's HMAC key");
    if (info->auth_policy != expected_policy)
      return fail(Code::StoreCorrupt, "The store key is bound to another policy authority than the configured one "
                                      "(tpm.policy-authority changed?); the store cannot be unlocked");
    return tpm::KeyBlob{std::move(*pub), std::move(*priv)};
  }
  for (const auto* r : {&pub, &priv})
    if (!*r && r->error().code != Code::NotFound) return tl::unexpected(r->error());
  if (store_exists())
    return fail(Code::StoreCorrupt, "The store key (" + dir.string() + "/store-key.*) is missing: the store cannot "
                                    "be verified");
  auto key = MCIMD_TRY(tpm.create_hmac_key(tpm::SealOptions{expected_policy, /*no_da=*/true}));
  MCIMD_CHECK(make_private_dir(config_.store));
  MCIMD_CHECK(make_private_dir(dir));
  // The private part first: a public file alone is never taken for a key.
  MCIMD_CHECK(write_file_atomic(dir / "store-key.priv", key.private_area));
  MCIMD_CHECK(write_file_atomic(dir / "store-key.pub", key.public_area));
  log::info("Created the store key in the TPM");
  return key;
}

Result<tpm::CounterSpec> Device::counter_spec() const {
  if (!keys_) return fail(Code::PlatformStateChanged, "The store is locked: no signed policy approves the platform");
  return tpm::CounterSpec{config_.tpm.nv_counter_index, keys_->nv_auth};
}

Status Device::ensure_counter(tpm::Context& tpm) {
  auto spec = MCIMD_TRY(counter_spec());
  auto value = tpm.counter_read(spec);
  if (value) return {};
  const bool existing_store = store_exists();
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08x", config_.tpm.nv_counter_index);
  const std::string name = std::string("NV counter ") + hex;
  if (value.error().code == Code::NotFound) {
    if (existing_store)
      return fail(Code::RollbackDetected, "The anti-rollback " + name + " is gone but the store needs it: the TPM "
                                          "was cleared or the counter removed");
  } else if (value.error().code == Code::NotAuthorized && !existing_store) {
    // Left over from an earlier store on this TPM: a new store brings a new counter.
    log::info("Replacing the leftover " + name + " of an earlier store");
    MCIMD_CHECK(tpm.counter_undefine(config_.tpm.nv_counter_index));
  } else {
    return tl::unexpected(value.error());
  }
  MCIMD_CHECK(tpm.counter_define(spec));
  MCIMD_CHECK(tpm.counter_read(spec));
  return {};
}

Status Device::unlock() {
  if (unlocked()) return {};
  // Whatever fails below leaves the device locked, with no key and no half-verified store.
  drop_secrets();
  auto done = [&]() -> Status {
    auto* ctx = MCIMD_TRY(tpm());
    const auto* policy = MCIMD_TRY(policies_.select(*ctx));
    auto key = MCIMD_TRY(store_key(*ctx));
    auto master = MCIMD_TRY(ctx->hmac(key, bytes_of(kMasterLabel), *policy));
    keys_ = Keys{hmac_sha256(master, bytes_of(kMacLabel)), hmac_sha256(master, bytes_of(kNvAuthLabel))};
    wipe(master.data(), master.size());
    MCIMD_CHECK(ensure_counter(*ctx));
    // Opened again on every unlock: what changed on disk while locked is checked like at start.
    store_.reset();
    store_.emplace(MCIMD_TRY(store::Store::open(config_.store, *this)));
    if (auto jump = store_->opened_after_counter_jump())
      log::warning("The anti-rollback counter was " + std::to_string(jump->counter - jump->generation) +
                   " ahead of the store after an unclean TPM restart (reset count " +
                   std::to_string(jump->recorded.reset_count) + " → " + std::to_string(jump->current.reset_count) +
                   "): accepted within the orderly counter's window");
    // The SRK pin and an attestation key, in the first commit: from then on a platform that
    // changes can prove what changed even while the store is locked.
    auto tx = MCIMD_TRY(store_->begin());
    if (!store_->pinned_srk()) MCIMD_CHECK(tx.pin_srk(MCIMD_TRY(ctx->srk_public())));
    if (!MCIMD_TRY(store_->attestation())) {
      auto ak = MCIMD_TRY(ctx->create_ak());
      MCIMD_CHECK(tx.set_attestation(store::AttestationRecord{store::Blob{ak.public_area, ak.private_area}, {}}));
      log::info("Created the attestation key");
    }
    return tx.commit();
  }();
  if (!done) {
    drop_secrets();
    return done;
  }
  unlocked_ = true;
  return {};
}

tpm::ApprovedPolicy Device::profile_policy(const store::ProfileMetadata& meta) const {
  tpm::ApprovedPolicy p = policy();
  if (meta.deletion) p.deletion = tpm::NvBinding{meta.deletion->nv_index, meta.deletion->value};
  return p;
}

Result<Device::Credentials*> Device::credentials(const store::Profile& profile) {
  if (credentials_ && credentials_->profile_id == profile.meta.id && credentials_->k_public == profile.k.public_area)
    return &*credentials_;
  credentials_.reset();
  auto* ctx = MCIMD_TRY(tpm());
  Credentials c;
  c.profile_id = profile.meta.id;
  c.k_public = profile.k.public_area;
  if (profile.meta.key_protection == store::KeyProtection::TpmAes)
    c.k = MCIMD_TRY(ctx->load_aes_key(tpm::KeyBlob{profile.k.public_area, profile.k.private_area}));
  c.opc = MCIMD_TRY(ctx->unseal(tpm::KeyBlob{profile.opc.public_area, profile.opc.private_area},
                                profile_policy(profile.meta)));
  if (c.opc.size() != 16) return fail(Code::StoreCorrupt, "Profile " + profile.meta.id + ": OPc has the wrong length");
  credentials_ = std::move(c);
  return &*credentials_;
}

Result<uint64_t> Device::counter() {
  auto* ctx = MCIMD_TRY(tpm());
  return ctx->counter_read(MCIMD_TRY(counter_spec()));
}

Result<uint64_t> Device::increment() {
  auto* ctx = MCIMD_TRY(tpm());
  return ctx->counter_increment(MCIMD_TRY(counter_spec()));
}

Result<store::BootCounts> Device::boot_counts() {
  MCIMD_CHECK(tpm());
  return boot_;
}

Result<Bytes> Device::mac(std::span<const uint8_t> data) {
  if (!keys_) return fail(Code::PlatformStateChanged, "The store is locked: no signed policy approves the platform");
  auto m = hmac_sha256(keys_->mac_key, data);
  return Bytes(m.begin(), m.end());
}

}  // namespace mcimd::daemon
