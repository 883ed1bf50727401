# Installing the C library: include/liner.h, libliner_broker.so (with its SONAME), a
# self-contained libliner_broker.a, liner.pc and the CMake package `liner`.
#
# Invariants
# - The static archive holds every object the C API needs that this build compiles: its own,
#   liner_core's, and those of every OBJECT or STATIC library of this project that liner_core
#   links, at any depth (e.g. third-party code built from native/third_party/). A user links it
#   with nothing but the libraries of LINER_STATIC_LINK_LIBS.
# - LINER_STATIC_LINK_LIBS is derived, not written down: it is whatever liner_core links that is
#   not a target of this project (system libraries such as hiredis, zstd, sqlite3, dl, threads),
#   plus the C++ run-time libraries a C linker leaves out. Building a dependency from source
#   therefore takes it off the list by itself.
# - Both installs are relocatable: liner.pc finds its prefix from ${pcfiledir}, and the CMake
#   package from its own location, so the prefix may be chosen at install time
#   (cmake --install build --prefix DIR) or moved afterwards.
#
# Included by the top-level CMakeLists.txt after liner_core, liner_broker and
# liner_broker_static are declared and liner_core's link libraries are final.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Walks the link libraries of `target`: objects of this project's OBJECT/STATIC libraries are
# appended to ${objects_var}, everything else to ${external_var} (as link items).
function(_liner_collect_links target objects_var external_var visited_var)
  set(objects ${${objects_var}})
  set(external ${${external_var}})
  set(visited ${${visited_var}})
  get_target_property(links ${target} LINK_LIBRARIES)
  get_target_property(interface_links ${target} INTERFACE_LINK_LIBRARIES)
  foreach(item IN LISTS links interface_links)
    if(NOT item OR item MATCHES "-NOTFOUND$")
      continue()
    endif()
    # target_link_libraries(PRIVATE) on a static library records `$<LINK_ONLY:x>`.
    if(item MATCHES "^\\$<LINK_ONLY:([^$<>]+)>$")
      set(item "${CMAKE_MATCH_1}")
    elseif(item MATCHES "\\$<")
      message(FATAL_ERROR "cmake/LinerInstall.cmake: cannot tell what liner_core's link item "
                          "'${item}' (of ${target}) puts in the static archive; teach "
                          "_liner_collect_links about it")
    endif()
    if(item IN_LIST visited)
      continue()
    endif()
    list(APPEND visited "${item}")
    if(TARGET ${item})
      get_target_property(imported ${item} IMPORTED)
      get_target_property(type ${item} TYPE)
      if(imported)
        list(APPEND external "${item}")
      elseif(type STREQUAL "OBJECT_LIBRARY" OR type STREQUAL "STATIC_LIBRARY")
        list(APPEND objects "$<TARGET_OBJECTS:${item}>")
        _liner_collect_links(${item} objects external visited)
      elseif(type STREQUAL "INTERFACE_LIBRARY")
        _liner_collect_links(${item} objects external visited)
      else()
        message(FATAL_ERROR "cmake/LinerInstall.cmake: liner_core links ${item}, a ${type}; "
                            "the static archive can only take in OBJECT and STATIC libraries")
      endif()
    else()
      list(APPEND external "${item}")
    endif()
  endforeach()
  set(${objects_var} ${objects} PARENT_SCOPE)
  set(${external_var} ${external} PARENT_SCOPE)
  set(${visited_var} ${visited} PARENT_SCOPE)
endfunction()

# A system library as a bare name ("hiredis" for /usr/lib/.../libhiredis.so or -lhiredis), which
# a linker finds on any machine, where a path would tie the package to this one.
function(_liner_library_name item out_var)
  if(item STREQUAL "Threads::Threads")
    set(name pthread)
  elseif(item MATCHES "^-l(.+)$")
    set(name "${CMAKE_MATCH_1}")
  elseif(IS_ABSOLUTE "${item}" AND item MATCHES "/lib([^/]+)\\.(so|a)(\\.[0-9.]+)?$")
    set(name "${CMAKE_MATCH_1}")
  elseif(item MATCHES "^[A-Za-z0-9_+.-]+$")
    set(name "${item}")
  else()
    message(FATAL_ERROR "cmake/LinerInstall.cmake: cannot name the library '${item}' that "
                        "liner_core links, for liner.pc and the CMake package")
  endif()
  set(${out_var} "${name}" PARENT_SCOPE)
endfunction()

# ---- the self-contained static archive ------------------------------------------------------

set(_liner_objects "$<TARGET_OBJECTS:liner_core>")
get_target_property(_liner_core_type liner_core TYPE)
if(_liner_core_type STREQUAL "OBJECT_LIBRARY")
  set(_liner_objects "")  # liner_broker_static links it directly, which adds its objects
endif()
set(_liner_external "")
set(_liner_visited liner_core)
_liner_collect_links(liner_core _liner_objects _liner_external _liner_visited)
target_sources(liner_broker_static PRIVATE ${_liner_objects})

# The C++ run-time libraries that linking C leaves out (stdc++, m with GCC): a C program that
# links the archive needs them, and CMake links C-only projects with the C compiler.
set(_liner_cxx_runtime ${CMAKE_CXX_IMPLICIT_LINK_LIBRARIES})
if(CMAKE_C_IMPLICIT_LINK_LIBRARIES)
  list(REMOVE_ITEM _liner_cxx_runtime ${CMAKE_C_IMPLICIT_LINK_LIBRARIES})
endif()

set(LINER_STATIC_LINK_LIBS "")
foreach(item IN LISTS _liner_external _liner_cxx_runtime)
  _liner_library_name("${item}" name)
  list(APPEND LINER_STATIC_LINK_LIBS "${name}")
endforeach()
list(REMOVE_DUPLICATES LINER_STATIC_LINK_LIBS)

# Inside the build tree liner_core brings these itself (CMakeLists.txt links it there).
foreach(name IN LISTS LINER_STATIC_LINK_LIBS)
  target_link_libraries(liner_broker_static INTERFACE "$<INSTALL_INTERFACE:${name}>")
endforeach()

# ---- files ---------------------------------------------------------------------------------

set(LINER_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/liner")
set(LINER_PKGCONFIG_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")

set_target_properties(liner_broker PROPERTIES EXPORT_NAME liner)
set_target_properties(liner_broker_static PROPERTIES EXPORT_NAME liner_static)
install(TARGETS liner_broker liner_broker_static
        EXPORT linerTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/liner.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Licences: liner's, and those of hiredis, zstd, SQLite and OpenSSL, which both libraries carry
# compiled in (OpenSSL linked statically).
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/native/third_party/hiredis/COPYING DESTINATION ${CMAKE_INSTALL_DOCDIR}/third_party/hiredis)
install(FILES ${PROJECT_SOURCE_DIR}/native/third_party/zstd/LICENSE ${PROJECT_SOURCE_DIR}/native/third_party/zstd/COPYING
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/third_party/zstd)
install(FILES ${PROJECT_SOURCE_DIR}/native/third_party/sqlite/LICENSE.md DESTINATION ${CMAKE_INSTALL_DOCDIR}/third_party/sqlite)
install(FILES ${PROJECT_SOURCE_DIR}/native/third_party/openssl/LICENSE ${PROJECT_SOURCE_DIR}/native/third_party/openssl/COPYRIGHT
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/third_party/openssl)

# CMake package: linerTargets.cmake locates the prefix from its own path; the config file
# only pulls it in.
install(EXPORT linerTargets NAMESPACE liner:: DESTINATION ${LINER_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/linerConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/linerConfig.cmake
                              INSTALL_DESTINATION ${LINER_CMAKE_DIR})
# SOVERSION stays 0 while the ABI stays liner_broker's, so any 0.x satisfies a 0.y request.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/linerConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/linerConfig.cmake ${PROJECT_BINARY_DIR}/linerConfigVersion.cmake
        DESTINATION ${LINER_CMAKE_DIR})

# pkg-config: the prefix is the pc file's directory walked back up LINER_PKGCONFIG_DIR.
if(IS_ABSOLUTE "${LINER_PKGCONFIG_DIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  message(FATAL_ERROR "cmake/LinerInstall.cmake: liner.pc is relocatable only with relative "
                      "CMAKE_INSTALL_LIBDIR and CMAKE_INSTALL_INCLUDEDIR")
endif()
file(RELATIVE_PATH _liner_pc_to_prefix "/prefix/${LINER_PKGCONFIG_DIR}" "/prefix")
string(REGEX REPLACE "/$" "" _liner_pc_to_prefix "${_liner_pc_to_prefix}")
set(LINER_PC_PREFIX "\${pcfiledir}/${_liner_pc_to_prefix}")
list(TRANSFORM LINER_STATIC_LINK_LIBS PREPEND "-l" OUTPUT_VARIABLE _liner_pc_private)
list(JOIN _liner_pc_private " " LINER_PC_LIBS_PRIVATE)
configure_file(${CMAKE_CURRENT_LIST_DIR}/liner.pc.in ${PROJECT_BINARY_DIR}/liner.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/liner.pc DESTINATION ${LINER_PKGCONFIG_DIR})
