# lifecycle: releases, remote commands and deletion receipts (protocol/lifecycle.hpp) — strict JSON
# and round trips, the device's checks of who signed a release or a command, and the operator's
# signing and deletion receipt checks with mcim-operator run as a process; software PKI and
# software-made quotes (unit: no TPM, no network).
pkg_check_modules(LIFECYCLE_TEST_TSS2MU REQUIRED IMPORTED_TARGET tss2-mu)
mcimd_test(unit protocol_lifecycle_test mcimd-protocol mcimd-attestation-verifier PkgConfig::LIFECYCLE_TEST_TSS2MU
           OpenSSL::Crypto)
mcimd_test(unit lifecycle_check_test mcimd-attestation-verifier mcimd-test-pki PkgConfig::LIFECYCLE_TEST_TSS2MU
           OpenSSL::Crypto)
mcimd_test(unit operator_lifecycle_test mcimd-operator-lib mcimd-test-pki mcimd-attestation-verifier
           PkgConfig::LIFECYCLE_TEST_TSS2MU OpenSSL::Crypto)
add_dependencies(operator_lifecycle_test mcim-operator)
