// Preloaded (NODE_OPTIONS=--require) into the arm64 node that runs under qemu-user, and so into
// every node it starts. Without binfmt_misc the kernel cannot execute an aarch64 binary, so a child
// that is one — process.execPath (vitest's worker forks, the suite's fixture processes, the CLI)
// or esbuild's service binary — would fail with ENOEXEC. This prefixes such children with
// `qemu-aarch64 -L <sysroot>`; every other program (redis-server, python3, sh) is a host binary
// and starts as it is.
//
// Covers spawn/fork/exec/execFile (all go through ChildProcess.prototype.spawn) and
// spawnSync/execFileSync. A command line given to a shell (exec, `shell: true`) that names the
// node binary is not rewritten: the shell executes it, and it fails loudly with ENOEXEC.
'use strict';
const childProcess = require('node:child_process');

const qemu = process.env.LINER_QEMU;
const sysroot = process.env.LINER_QEMU_SYSROOT;
if (!qemu || !sysroot) throw new Error('qemu_children.cjs: LINER_QEMU and LINER_QEMU_SYSROOT must be set');

const fs = require('node:fs');

const EM_AARCH64 = 183;
const seen = new Map();
/** Whether `file` (a path, not a bare name looked up in PATH) is an aarch64 ELF executable. */
function isAarch64(file) {
  if (typeof file !== 'string' || !file.includes('/')) return false;
  if (!seen.has(file)) {
    let yes = false;
    try {
      const fd = fs.openSync(file, 'r');
      const h = Buffer.alloc(20);
      fs.readSync(fd, h, 0, 20, 0);
      fs.closeSync(fd);
      yes = h.readUInt32BE(0) === 0x7f454c46 && h.readUInt16LE(18) === EM_AARCH64;
    } catch {
      // Not readable: let the spawn itself report it.
    }
    seen.set(file, yes);
  }
  return seen.get(file);
}

const spawn = childProcess.ChildProcess.prototype.spawn;
childProcess.ChildProcess.prototype.spawn = function (options) {
  if (options && isAarch64(options.file) && !options.shell) {
    // options.args[0] is argv0; qemu is the program now, and it passes the rest through.
    options = { ...options, file: qemu, args: [qemu, '-L', sysroot, options.file, ...options.args.slice(1)] };
  }
  return spawn.call(this, options);
};

// spawnSync and execFileSync take (file, args?, options?): both get the same wrapper.
function runUnderQemu(original) {
  return function (file, args, options) {
    if (isAarch64(file) && !(options && options.shell)) {
      if (!Array.isArray(args)) [args, options] = [[], args];
      return original.call(this, qemu, ['-L', sysroot, file, ...args], options);
    }
    return original.apply(this, arguments);
  };
}
childProcess.spawnSync = runUnderQemu(childProcess.spawnSync);
childProcess.execFileSync = runUnderQemu(childProcess.execFileSync);

// `import { spawnSync } from 'node:child_process'` binds the export as it was: refresh them.
require('node:module').syncBuiltinESMExports();
