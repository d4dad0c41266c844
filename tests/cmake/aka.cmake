# aka: Milenage against TS 35.208, SQN management (TS 33.102 Annex C), USIM-side checks and GSM conversion.
mcimd_test(unit aka_milenage_test mcimd-aka)
mcimd_test(unit aka_sqn_test mcimd-aka)
mcimd_test(unit aka_usim_test mcimd-aka)
mcimd_test(unit aka_identity_test mcimd-aka)
