#!/usr/bin/env node
// The npm package's install step: keep the prebuilt addon where one fits this platform, else build
// it from the sources the package carries (binding.gyp, native/, hiredis, zstd and SQLite under
// native/third_party/), so a platform without a prebuilt binary still installs with no system
// library, only a C++17 compiler, make and Python 3 (node-gyp's needs).
//
// In a checkout (this package is not inside a node_modules directory) it does nothing: there,
// native/node/build.sh builds the addon, and `node-gyp rebuild` would delete CMake's build/.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const fromSource = /^(1|true)$/i.test(process.env.LINER_BUILD_FROM_SOURCE || process.env.npm_config_build_from_source || '');

if (!root.split(path.sep).includes('node_modules')) process.exit(0);

if (!fromSource) {
  try {
    // Loads the binary too: one that exists but cannot load here (an older C library, say) is
    // no fit either.
    require('node-gyp-build')(root);
    process.exit(0);
  } catch (err) {
    console.error(`liner-broker: no prebuilt addon loads on ${process.platform}-${process.arch} ` +
      `(${String(err.message).split('\n')[0]}); building it from source`);
  }
}

// npm hands install scripts its own node-gyp (npm_config_node_gyp); else a node-gyp on PATH.
const nodeGyp = process.env.npm_config_node_gyp;
const [command, args] = nodeGyp ? [process.execPath, [nodeGyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const built = spawnSync(command, args, {
  cwd: root,
  stdio: 'inherit',
  env: { JOBS: 'max', ...process.env },
});
if (built.status !== 0) {
  console.error('liner-broker: building the addon from source failed' +
    (built.error ? ` (${built.error.message})` : '') +
    '; it needs a C++17 compiler, make and Python 3 (see README.md, "Supported platforms and runtimes")');
  process.exit(built.status || 1);
}
