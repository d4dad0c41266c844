# Import of MCIM secrets: blobs made for a device's SRK and the SRK's certification (unit: checked
# in software with the parent's private key), TPM2_Import into a private swtpm, tpm2-tools interop.
pkg_check_modules(IMPORT_TEST_TSS2MU REQUIRED IMPORTED_TARGET tss2-mu)
mcimd_test(unit duplication_test mcimd-attestation-verifier PkgConfig::IMPORT_TEST_TSS2MU OpenSSL::Crypto)
mcimd_test(integration tpm_import_test mcimd-tpm mcimd-test-policy mcimd-attestation-verifier mcimd-aka
           PkgConfig::IMPORT_TEST_TSS2MU OpenSSL::Crypto)
