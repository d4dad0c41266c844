mcimd_test(unit common_test mcimd-common)
