# Runs an example that must fail and checks that it fails the way a caller can rely on: exit
# status 1 (not 0, not a crash, not a hang) and an "error: ..." line on stderr saying why.
#
#   cmake -DEXAMPLE=<program> -DARG=<argument> -P expect_failure.cmake
execute_process(COMMAND "${EXAMPLE}" "${ARG}" RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err
                TIMEOUT 30)
if(NOT status STREQUAL "1" OR NOT err MATCHES "(^|\n)error: ")
  message(FATAL_ERROR "${EXAMPLE} ${ARG}: expected exit status 1 and an \"error: \" line on stderr, "
                      "got status ${status}\n--- stdout\n${out}--- stderr\n${err}")
endif()
message(STATUS "${EXAMPLE} ${ARG}: exit status 1; ${err}")
