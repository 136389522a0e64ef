# tests/arch_check.cmake - the build stops on other architectures than x86-64,
# and says why.
#
#   cmake -DSOURCE_DIR=... -DWORK_DIR=... -P tests/arch_check.cmake
#
# Configures the project in WORK_DIR as a build for aarch64 (the configure
# step only: nothing is compiled), expects it to fail with the x86-64
# message, then does the same for x86_64 and expects the check to pass.
# WORK_DIR is removed at the end.
foreach(var SOURCE_DIR WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "arch_check: -D${var}=... is required")
  endif()
endforeach()

function(configure_for processor out_rc out_text)
  file(REMOVE_RECURSE "${WORK_DIR}")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}" -DCMAKE_SYSTEM_NAME=Linux
            -DCMAKE_SYSTEM_PROCESSOR=${processor} -DSTAKEOUT_TESTS=OFF
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
  file(REMOVE_RECURSE "${WORK_DIR}")
  set(${out_rc} "${rc}" PARENT_SCOPE)
  set(${out_text} "${out}${err}" PARENT_SCOPE)
endfunction()

configure_for(aarch64 rc text)
if(rc EQUAL 0)
  message(FATAL_ERROR "arch_check: a build for aarch64 configured; it must stop:\n${text}")
endif()
string(REGEX REPLACE "[ \n]+" " " flat "${text}")
if(NOT flat MATCHES "supports x86-64 Linux only, and this build is for 'aarch64'")
  message(FATAL_ERROR "arch_check: the aarch64 build failed without the x86-64 message:\n${text}")
endif()
message(STATUS "ok    aarch64: the build stops with the x86-64 message")

configure_for(x86_64 rc text)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "arch_check: a build for x86_64 did not configure:\n${text}")
endif()
message(STATUS "ok    x86_64: the check lets the build through")
