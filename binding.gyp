# The liner Node-API addon: native/core (the same engine as libliner_broker, compiled from
# source) plus native/node (the binding). hiredis, zstd and SQLite are linked from their static
# archives when the system has them, so the .node needs nothing but libc.
#
# native/node/build.sh builds this file from build/addon/ (node-gyp always writes to ./build,
# which is CMake's directory here); it sets liner_root to the way back to this directory.
{
  'variables': {
    'liner_root%': '.',
  },
  'targets': [
    {
      'target_name': 'liner',
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'<(liner_root)/native/core\').filter(f => f.endsWith(\'.cpp\')).sort().map(f => \'<(liner_root)/native/core/\' + f).join(\' \')")',
        '<(liner_root)/native/node/addon.cpp',
        '<(liner_root)/native/node/arena_pool.cpp',
        '<(liner_root)/native/node/client_wrap.cpp',
        '<(liner_root)/native/node/directory_wrap.cpp',
        '<(liner_root)/native/node/errors.cpp',
        '<(liner_root)/native/node/inbox.cpp',
      ],
      'include_dirs': [
        '<(liner_root)/native',
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
          'libraries': [
            # Static archive if the compiler finds one, else the shared library.
            '<!@(node -p "[\'hiredis\', \'zstd\', \'sqlite3\'].map(n => { try { const p = require(\'child_process\').execSync(\'cc -print-file-name=lib\' + n + \'.a\').toString().trim(); if (require(\'fs\').existsSync(p)) return p; } catch (e) {} return \'-l\' + n; }).join(\' \')")',
            '-pthread',
            '-lm',  # SQLite's static archive uses libm
          ],
          # Export the Node-API entry points only: the core, hiredis, zstd, SQLite and libstdc++ stay
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
          'libraries': ['-lhiredis', '-lzstd', '-lsqlite3'],
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
