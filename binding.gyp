# The liner Node-API addon: native/core (the same engine as libliner_broker, compiled from
# source) plus native/node (the binding), and hiredis, zstd and SQLite from native/third_party/,
# so the .node needs nothing but libc and builds the same on every platform (the npm package
# carries these sources: where no prebuilt binary matches, `npm install` builds from them).
#
# native/node/build.sh builds this file from build/addon/ (node-gyp always writes to ./build,
# which is CMake's directory here); it sets liner_root to the way back to this directory. An
# install from the npm package builds it in place (liner_root '.').
{
  'variables': {
    'liner_root%': '.',
  },
  'targets': [
    {
      # Not our code: optimised, no warnings. ZSTD_DISABLE_ASM: zstd's one assembly file is x86-64
      # only; its C path serves every target. liner never loads SQLite extensions.
      'target_name': 'liner_third_party',
      'type': 'static_library',
      'sources': [
        '<!@(node <(liner_root)/native/node/sources.js third_party <(liner_root))',
      ],
      'include_dirs': [
        '<(liner_root)/native/third_party/zstd',
      ],
      'defines': ['ZSTD_DISABLE_ASM', 'SQLITE_OMIT_LOAD_EXTENSION', 'SQLITE_THREADSAFE=1'],
      'cflags': ['-O2', '-w', '-fvisibility=hidden'],
      'xcode_settings': { 'GCC_SYMBOLS_PRIVATE_EXTERN': 'YES', 'WARNING_CFLAGS': ['-w'] },
    },
    {
      'target_name': 'liner',
      'dependencies': ['liner_third_party'],
      'sources': [
        '<!@(node <(liner_root)/native/node/sources.js core <(liner_root))',
      ],
      'include_dirs': [
        '<(liner_root)/native',
        '<(liner_root)/native/third_party/hiredis',
        '<(liner_root)/native/third_party/zstd',
        '<(liner_root)/native/third_party/sqlite',
        '<!(node -p "require(\'node-addon-api\').include_dir")',
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NAPI_CPP_EXCEPTIONS',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        'LINER_NODE_VERSION="<!(node -p "require(\'<(liner_root)/package.json\').version")"',
      ],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti'],
      'cflags_cc': ['-std=gnu++17', '-fexceptions', '-fvisibility=hidden', '-Wall', '-Wno-unused-parameter'],
      'conditions': [
        ['OS=="linux"', {
          # -ldl: the PostgreSQL store loads libpq at run time (dlopen is in libc from glibc 2.34).
          # OpenSSL (Redis over TLS) is linked statically and kept private like the rest: this
          # .node never uses, nor disturbs, the OpenSSL of the process (Node's own, or none in Bun
          # and Deno). Debian: libssl-dev.
          'libraries': ['-l:libssl.a', '-l:libcrypto.a', '-pthread', '-ldl', '-lm'],
          # Export the Node-API entry points only: the core, hiredis, zstd, SQLite, OpenSSL and libstdc++ stay
          # private to this .node and never clash with another addon's copy.
          'ldflags': [
            '-Wl,--exclude-libs,ALL',
            '-Wl,--version-script=<!(node -p "require(\'path\').resolve(\'<(liner_root)/native/node/exports.map\')")',
            '-static-libstdc++',
            '-static-libgcc',
            '-pthread',
          ],
        }],
        ['OS=="mac"', {
          'xcode_settings': {
            'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
            'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
            'GCC_SYMBOLS_PRIVATE_EXTERN': 'YES',
          },
        }],
      ],
    },
  ],
}
