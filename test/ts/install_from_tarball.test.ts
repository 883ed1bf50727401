// The npm package installs without a compiler: `npm pack` makes a tarball that carries the
// prebuilt addon and the compiled TypeScript; `npm install <tarball>` in an empty project (no
// network needed: node-gyp-build comes from npm's cache) runs no build step, and two peers
// exchange a message through both entry points (ESM and CommonJS, which share one class set).
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { afterAll, expect, test } from 'vitest';

import { redisUrl } from './support/testkit.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'liner-install-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * A PATH with node and npm only, where every build tool (compilers, make, node-gyp, python)
 * is a stub that records its call and fails.
 */
function toolFreePath(): { PATH: string; calls: string } {
  const bin = path.join(work, 'bin');
  const calls = path.join(work, 'tool-calls.log');
  mkdirSync(bin);
  symlinkSync(process.execPath, path.join(bin, 'node'));
  const npmCli = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\nexec "${process.execPath}" "${npmCli}" "$@"\n`);
  chmodSync(path.join(bin, 'npm'), 0o755);
  for (const tool of ['cc', 'gcc', 'c++', 'g++', 'clang', 'make', 'cmake', 'node-gyp', 'python', 'python3']) {
    writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> "${calls}"\nexit 1\n`);
    chmodSync(path.join(bin, tool), 0o755);
  }
  return { PATH: bin, calls };
}

test('npm pack + npm install <tarball> work without a compiler, and the package works', async () => {
  // --ignore-scripts: `npm test` built dist/ and prebuilds/ already, and prepack would rewrite
  // dist/ under the feet of the test files running in parallel.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root });
  const [packed] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
  const files = packed.files.map((f) => f.path).sort();
  expect(files).toContain(`prebuilds/${process.platform}-${process.arch}/liner.node`);
  for (const f of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts', 'package.json', 'README.md']) {
    expect(files).toContain(f);
  }
  expect(files.filter((f) => /^(src|native|test|build)\/|binding\.gyp/.test(f))).toEqual([]);
  // The docs travel with the package: every relative link of its pages reaches a packed file.
  const pages = files.filter((f) => f === 'README.md' || /^docs\/.*\.md$/.test(f));
  expect(pages).toContain('docs/cli.md');
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(path.join(root, page), 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)\s]*)?\)/g)) {
      if (/^[a-z]+:/.test(target)) continue; // an absolute URL
      const dest = path.posix.normalize(path.posix.join(path.posix.dirname(page), target)).replace(/\/$/, '');
      if (!files.includes(dest) && !files.some((f) => f.startsWith(dest + '/'))) broken.push(`${page}: ${target}`);
    }
  }
  expect(broken).toEqual([]);

  const project = path.join(work, 'consumer');
  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const tools = toolFreePath();
  const env = {
    ...process.env,
    PATH: tools.PATH,
    npm_config_build_from_source: 'false',
    npm_config_node_gyp: path.join(tools.PATH, 'node-gyp'),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
  // Strip npm's per-run variables inherited from `npm test`.
  for (const k of Object.keys(env)) if (k.startsWith('npm_lifecycle') || k === 'npm_package_json') delete env[k as keyof typeof env];
  const install = await run('npm', ['install', '--prefer-offline', '--foreground-scripts', path.join(work, packed.filename)], {
    cwd: project,
    env,
  });
  const log = install.stdout + install.stderr;
  expect(log).not.toMatch(/node-gyp|gyp info|prebuild-install/);
  expect(existsSync(tools.calls) ? readFileSync(tools.calls, 'utf8') : '').toBe('');
  expect(existsSync(path.join(project, 'node_modules', 'liner', 'build'))).toBe(false);

  writeFileSync(
    path.join(project, 'exchange.mjs'),
    `
import { createRequire } from 'node:module';
import { Client, LinerError } from 'liner';
const cjs = createRequire(import.meta.url)('liner');
if (cjs.Client !== Client || cjs.LinerError !== LinerError) throw new Error('ESM and CJS entries differ');
const redis = process.argv[2];
const a = new Client({ name: 'installed_a', topic: 'installed_a', redis });
const b = new cjs.Client({ name: 'installed_b', topic: 'installed_b', redis });
const got = new Promise((resolve) => b.once('message', resolve));
await a.start();
await b.start();
a.sendTo('installed_b', 'hello from the tarball');
const m = await got;
console.log(m.from + ': ' + m.data);
await b.close();
await a.close();
`,
  );
  // What `liner --help` points to is in the installed package.
  const installed = path.join(project, 'node_modules', 'liner');
  const help = await run(process.execPath, [path.join(installed, 'dist', 'cli', 'main.js'), '--help'], { cwd: project, env });
  const named = [...help.stdout.matchAll(/\b(docs\/[\w./-]+\.md)\b/g)].map((m) => m[1]);
  expect(named.length).toBeGreaterThan(0);
  for (const doc of named) expect(existsSync(path.join(installed, doc)), doc).toBe(true);
  // `liner demo`, which --help advertises, runs from the installed package with nothing but
  // Node: on a temporary SQLite file.
  const noStore: NodeJS.ProcessEnv = { ...env };
  delete noStore.LINER_STORE_URL;
  delete noStore.LINER_REDIS_URL;
  const demo = await run(process.execPath, [path.join(installed, 'dist', 'cli', 'main.js'), 'demo'], {
    cwd: project,
    env: noStore,
    timeout: 90_000,
  });
  expect(demo.stdout).toMatch(/one[- ]to[- ]one/i);
  expect(demo.stdout).toMatch(/demo: OK/);

  const ran = await run(process.execPath, ['exchange.mjs', redisUrl], { cwd: project, env, timeout: 20_000 });
  expect(ran.stdout.trim()).toBe('installed_a: hello from the tarball');
  expect(existsSync(tools.calls) ? readFileSync(tools.calls, 'utf8') : '').toBe('');
}, 120_000);
