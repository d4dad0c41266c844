#include "tests/support/policy_authority.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <stdexcept>

#include "common/c_handle.hpp"

namespace mcimd::test {

namespace {

using EvpPkey = CHandle<EVP_PKEY, EVP_PKEY_free>;
using Bio = CHandle<BIO, BIO_free>;

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

template <class T>
T check(Result<T> r, const char* what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().describe());
  return std::move(*r);
}

}  // namespace

TestAuthority::TestAuthority() {
  EvpPkey key(EVP_EC_gen("prime256v1"));
  if (!key) throw std::runtime_error("EVP_EC_gen failed");
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  private_pem_ = bio_text(bio.get());
  authority_ = check(protocol::policy_authority_from_pem(private_pem_), "authority");
}

std::string TestAuthority::public_pem() const {
  Bio in(BIO_new_mem_buf(private_pem_.data(), static_cast<int>(private_pem_.size())));
  EvpPkey key(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  Bio out(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(out.get(), key.get());
  return bio_text(out.get());
}

Bytes TestAuthority::auth_policy() const {
  const std::string_view ref = protocol::kPcrPolicyRef;
  return protocol::authorize_policy_digest(authority_.name,
                                           std::span(reinterpret_cast<const uint8_t*>(ref.data()), ref.size()));
}

protocol::SignedPcrPolicy TestAuthority::sign(const protocol::PcrValues& values) const {
  return check(protocol::sign_pcr_policy(private_pem_, values), "sign");
}

protocol::SignedPcrPolicy TestAuthority::sign_current(tpm::Context& tpm, const std::vector<unsigned>& pcrs) const {
  return sign(current_pcrs(tpm, pcrs));
}

std::filesystem::path TestAuthority::write_public(const std::filesystem::path& dir) const {
  auto path = dir / "policy-authority.pem";
  std::ofstream(path) << public_pem();
  return path;
}

std::filesystem::path TestAuthority::write_private(const std::filesystem::path& dir) const {
  auto path = dir / "policy-authority.key";
  std::ofstream(path) << private_pem_;
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return path;
}

protocol::PcrValues current_pcrs(tpm::Context& tpm, const std::vector<unsigned>& pcrs) {
  auto values = check(tpm.pcr_read(tpm::PcrSelection{"sha256", pcrs}), "pcr_read");
  protocol::PcrValues out;
  out.bank = "sha256";
  for (auto& v : values) out.values[v.index] = v.digest;
  return out;
}

tpm::ApprovedPolicy approve(tpm::Context& tpm, const protocol::PolicyAuthority& authority,
                            const protocol::SignedPcrPolicy& policy) {
  auto ticket = check(tpm.verify_signature(authority.public_area,
                                           protocol::approval_digest(policy.approved_policy, policy.policy_ref),
                                           policy.signature),
                      "verify_signature");
  tpm::ApprovedPolicy a;
  a.pcrs.bank = policy.pcrs.bank;
  for (auto& [index, value] : policy.pcrs.values) a.pcrs.pcrs.push_back(index);
  a.pcr_digest = protocol::pcr_values_digest(policy.pcrs);
  a.approved_policy = policy.approved_policy;
  a.policy_ref = policy.policy_ref;
  a.authority_name = policy.authority;
  a.ticket = std::move(ticket);
  return a;
}

}  // namespace mcimd::test
