# provisioning: the remote provisioning messages (strict JSON, round trips) against TPM
# structures made in software (unit: no TPM, no network).

pkg_check_modules(PROVISIONING_TEST_TSS2MU REQUIRED IMPORTED_TARGET tss2-mu)
mcimd_test(unit protocol_provisioning_test mcimd-protocol mcimd-attestation-verifier
           PkgConfig::PROVISIONING_TEST_TSS2MU OpenSSL::Crypto)
