mcimd_test(unit common_test mcimd-common)
mcimd_test(unit packaging_test)
