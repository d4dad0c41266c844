mcimd_test(unit wpa_sim_request_test mcimd-wpa-sim-lib)
mcimd_test(unit wpa_sim_answer_test mcimd-wpa-sim-lib)
mcimd_test(integration wpa_sim_eap_test)
add_dependencies(wpa_sim_eap_test mcimd mcimctl mcim-operator mcimd-wpa-sim)
