mcimd_test(unit wpa_sim_request_test mcimd-wpa-sim-lib)
