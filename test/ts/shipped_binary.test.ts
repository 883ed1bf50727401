// The shipped addon (prebuilds/<platform>-<arch>/liner.node) needs nothing but libc: hiredis,
// zstd and libstdc++ are linked in statically, and their symbols stay private to it.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

const binary = path.resolve(__dirname, '../../prebuilds', `${process.platform}-${process.arch}`, 'liner.node');

test.runIf(process.platform === 'linux')('ldd lists no hiredis, zstd or libstdc++', () => {
  const ldd = execFileSync('ldd', [binary]).toString();
  expect(ldd).not.toMatch(/hiredis|zstd|libstdc\+\+/);
  const libs = ldd
    .split('\n')
    .map((l) => l.trim().split(/\s/)[0]!)
    .filter((l) => l && !l.startsWith('linux-vdso'));
  expect(libs.every((l) => /^(libc\.so|\/lib.*ld-linux|libm\.so|libpthread\.so|libdl\.so)/.test(l)), ldd).toBe(true);
});

test.runIf(process.platform === 'linux')('only the Node-API entry points are exported', () => {
  const exported = execFileSync('nm', ['-D', '--defined-only', binary])
    .toString()
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[2])
    .filter(Boolean);
  expect(exported.sort()).toEqual(['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
});
