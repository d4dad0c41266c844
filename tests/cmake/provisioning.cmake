# provisioning: the remote provisioning messages (strict JSON, round trips), the JWS signer's
# purpose and the device's checks of a signed MCIM package, against a software PKI and TPM
# structures made in software (unit: no TPM, no network).

# A small test PKI (root, optional intermediate, document-signing / TLS server / TLS client
# certificates on P-256 keys) for these tests and the HTTPS tests that come after them.
add_library(mcimd-test-pki STATIC support/test_pki.cpp)
target_link_libraries(mcimd-test-pki PUBLIC mcimd-common OpenSSL::Crypto)

pkg_check_modules(PROVISIONING_TEST_TSS2MU REQUIRED IMPORTED_TARGET tss2-mu)
mcimd_test(unit protocol_provisioning_test mcimd-protocol mcimd-attestation-verifier
           PkgConfig::PROVISIONING_TEST_TSS2MU OpenSSL::Crypto)
mcimd_test(unit package_check_test mcimd-attestation-verifier mcimd-test-pki PkgConfig::PROVISIONING_TEST_TSS2MU
           OpenSSL::Crypto)
# The daemon's side end to end on swtpm: package requests, installs, receipts, and every attack.
mcimd_test(integration daemon_provisioning_test mcimd-operator-lib mcimd-test-pki)
add_dependencies(daemon_provisioning_test mcimd mcimctl mcim-operator)
# As deployed: mcimctl provision → mcimd-agent → mcim-operator serve over loopback HTTPS, mcimd on swtpm.
mcimd_test(integration provisioning_https_test mcimd-operator-lib mcimd-test-pki)
add_dependencies(provisioning_https_test mcimd mcimctl mcim-operator mcimd-agent)
mcimd_test(unit operator_auc_store_test mcimd-operator-lib)
# Batch provisioning at factory scale: 1,000 records through mcim-operator batch, three of them
# real gateways on swtpm that install their packages.
mcimd_test(integration batch_provisioning_test mcimd-operator-lib mcimd-test-pki mcimd-attestation-verifier
           PkgConfig::PROVISIONING_TEST_TSS2MU OpenSSL::Crypto)
add_dependencies(batch_provisioning_test mcimd mcimctl mcim-operator)
mcimd_test(integration daemon_lifecycle_test mcimd-operator-lib mcimd-test-pki mcimd-test-policy mcimd-tpm)
add_dependencies(daemon_lifecycle_test mcimd mcimctl mcim-operator)
