# Cross-compiles liner for linux-arm64 (glibc) with Debian's cross toolchain
# (apt-get install g++-aarch64-linux-gnu):
#
#   cmake -S . -B build-arm64 -G Ninja --toolchain cmake/toolchains/aarch64-linux-gnu.cmake \
#     -DLINER_BUILD_TESTS=OFF -DLINER_BUILD_BENCH=OFF
#
# The libraries need nothing but libc at run time (hiredis, zstd and SQLite are compiled in,
# OpenSSL linked statically); building needs Debian's arm64 OpenSSL, unpacked into
# build/cross-openssl/arm64 by scripts/cross_openssl.sh arm64 (run it first). Programs built this way run on x64
# under qemu: qemu-aarch64 -L /usr/aarch64-linux-gnu <program>.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu ${CMAKE_CURRENT_LIST_DIR}/../../build/cross-openssl/arm64)
# Programs (ninja, python3) come from the host; libraries and headers only from the arm64 root.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
