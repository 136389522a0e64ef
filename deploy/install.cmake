# deploy/install.cmake - what `cmake --install` puts where, and the .deb that
# `cpack -G DEB` builds from it. Included by CMakeLists.txt.
#
# Under the prefix (/usr/local by default; /usr in the .deb):
#   bin/stakeout                           the daemon
#   lib/systemd/system/stakeout.service    the unit, ExecStart set to bin/stakeout
#   lib/sysusers.d/stakeout.conf           the unit's user (deploy/stakeout.sysusers)
#   share/stakeout/schema.json             the rules' JSON Schema
#   share/stakeout/default.yaml            the shipped rules, to compare with
# and the rules, rules/default.yaml, as /etc/stakeout/rules.yaml (for a
# prefix of /usr or /usr/local; PREFIX/etc/stakeout/rules.yaml for any
# other, and the unit's -c says which). An install never replaces rules
# already there; the .deb marks them a conffile, so dpkg keeps local edits.
#
# The unit is written at install time, not configure time: cpack installs
# with the package's prefix (/usr), and `cmake --install --prefix` may
# change it too.
install(TARGETS stakeout RUNTIME DESTINATION bin)
install(FILES rules/schema.json rules/default.yaml DESTINATION share/stakeout)
install(FILES deploy/stakeout.sysusers DESTINATION lib/sysusers.d RENAME stakeout.conf)
install(CODE "set(STAKEOUT_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
set(STAKEOUT_GEN_DIR \"${CMAKE_CURRENT_BINARY_DIR}/install-gen\")")
install(CODE [[
  if(CMAKE_INSTALL_PREFIX MATCHES "^/usr(/local)?/?$")
    set(stakeout_etc "/etc/stakeout")
  else()
    set(stakeout_etc "${CMAKE_INSTALL_PREFIX}/etc/stakeout")
  endif()

  file(READ "${STAKEOUT_SOURCE_DIR}/deploy/stakeout.service" unit)
  string(REPLACE "ExecStart=/usr/bin/stakeout run -c /etc/stakeout/rules.yaml"
         "ExecStart=${CMAKE_INSTALL_PREFIX}/bin/stakeout run -c ${stakeout_etc}/rules.yaml"
         unit "${unit}")
  if(NOT unit MATCHES "\nExecStart=${CMAKE_INSTALL_PREFIX}/bin/stakeout ")
    message(FATAL_ERROR "deploy/stakeout.service: no 'ExecStart=/usr/bin/stakeout run -c "
                        "/etc/stakeout/rules.yaml' line to point at this install")
  endif()
  file(WRITE "${STAKEOUT_GEN_DIR}/stakeout.service" "${unit}")
  file(INSTALL "${STAKEOUT_GEN_DIR}/stakeout.service"
       DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")

  if(EXISTS "$ENV{DESTDIR}${stakeout_etc}/rules.yaml")
    message(STATUS "Keeping: $ENV{DESTDIR}${stakeout_etc}/rules.yaml (the shipped rules are "
                   "${CMAKE_INSTALL_PREFIX}/share/stakeout/default.yaml)")
  else()
    file(INSTALL "${STAKEOUT_SOURCE_DIR}/rules/default.yaml" DESTINATION "${stakeout_etc}"
         RENAME rules.yaml)
  endif()
]])

# The .deb: cpack -G DEB in the build directory, after a build. It packages
# what is built: without this, its preinstall step would build every target
# (the tests and benchmarks too) first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)
set(STAKEOUT_MAINTAINER "stakeout maintainers <maintainers@stakeout.dev>" CACHE STRING
    "Maintainer field of the .deb")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME stakeout)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${STAKEOUT_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "catch performance problems of a process in the act")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
    "stakeout watches a production process at almost no cost, evaluates rules written in\n"
    "YAML and, when one fires, captures a CPU or memory profile and sends it with its\n"
    "context to a webhook. x86-64 only.")
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/stakeout/stakeout")
# The libraries' packages come from dpkg-shlibdeps (dpkg-dev); passwd for
# useradd where systemd-sysusers is missing, procps for the unit's /bin/kill.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd, procps")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
    ${PROJECT_SOURCE_DIR}/deploy/debian/prerm ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# /etc/stakeout is outside the prefix: install with DESTDIR into the package's tree.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
include(CPack)
