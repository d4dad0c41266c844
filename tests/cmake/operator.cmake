# operator: the mcim-operator command line run as a process, and its AuC helpers in-process.
mcimd_test(unit operator_cli_test mcimd-operator-lib)
add_dependencies(operator_cli_test mcim-operator)
