#pragma once
// Gateways made in software for batch provisioning tests: each has its own AK (so its own device
// id), and answers a factory nonce with a package request as mcimd makes it — evidence quoted by
// the AK over the nonce, the SRK certified by the AK over nonce ‖ device nonce. The SRK and the
// policy authority are shared by every device of a factory: the operator's checks of one device
// never compare it with another, and sharing them keeps a thousand devices cheap to make.
#include <openssl/rand.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "attestation/duplication.hpp"
#include "protocol/provisioning.hpp"
#include "protocol/quote.hpp"
#include "protocol/quote_domain.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

namespace mcimd::test {

class SyntheticFactory {
 public:
  struct Device {
    verifier::EvpPkey ak;
    protocol::PackageRequest request;
  };

  // A new device's request for a fresh random factory nonce.
  Device make_device() const {
    Device d{verifier::ec_key(), {}};
    d.request = request_by(d.ak.get(), verifier::tpm_public(d.ak.get(), verifier::kAkAttributes));
    return d;
  }

  // A request signed by `ak` (whose public area is `ak_public`), for a fresh factory nonce.
  protocol::PackageRequest request_by(EVP_PKEY* ak, const Bytes& ak_public) const {
    protocol::PackageRequest r;
    r.session = "factory";
    r.device = to_hex(*protocol::object_name(ak_public));
    r.operator_nonce = random(protocol::kProvisioningNonceSize);
    r.device_nonce = random(protocol::kProvisioningNonceSize);
    r.counter = 0;
    r.srk_public = srk_public_;
    Bytes both = r.operator_nonce;
    both.insert(both.end(), r.device_nonce.begin(), r.device_nonce.end());
    r.srk_certification = verifier::certify_by(
        ak, verifier::CertifySpec{protocol::qualifying_data(protocol::QuoteDomain::SrkCertification, both), srk_name_});
    r.authority = authority_public_;
    r.algorithms = {"milenage"};
    r.deletion = {0x01300001, 1};
    r.evidence = verifier::signed_evidence(ak, r.operator_nonce, attestation::alg::kSha256,
                                           {{7, Bytes(32, 0x07)}, {16, Bytes(32, 0x00)}});
    return r;
  }

  static void write(const std::filesystem::path& file, const protocol::PackageRequest& request) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << protocol::to_json(request);
    if (!out) throw std::runtime_error("cannot write " + file.string());
  }

 private:
  static Bytes random(std::size_t n) {
    Bytes b(n);
    if (RAND_bytes(b.data(), static_cast<int>(n)) != 1) throw std::runtime_error("RAND_bytes");
    return b;
  }

  verifier::EvpPkey srk_ = verifier::ec_key();
  Bytes srk_public_ = verifier::tpm_public(srk_.get(), verifier::kSrkAttributes);
  Bytes srk_name_ = *attestation::srk_name_of(srk_public_);
  verifier::EvpPkey authority_ = verifier::ec_key();
  Bytes authority_public_ = verifier::tpm_public(authority_.get(), verifier::kAkAttributes);
};

}  // namespace mcimd::test
