# Import of MCIM secrets: blobs made for a device's SRK and the SRK's certification (unit: checked
# in software with the parent's private key).
pkg_check_modules(IMPORT_TEST_TSS2MU REQUIRED IMPORTED_TARGET tss2-mu)
mcimd_test(unit duplication_test mcimd-attestation-verifier PkgConfig::IMPORT_TEST_TSS2MU OpenSSL::Crypto)
