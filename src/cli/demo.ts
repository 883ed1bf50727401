/**
 * `liner demo`: what `npm run demo` runs (scripts/demo.sh): the TypeScript demo
 * examples/ts/demo.ts on a temporary SQLite file, on a throwaway redis-server
 * (--throwaway-redis), or on the store of --store when given. The
 * demo itself is not repeated here: this runs that example program, compiled as demo.sh does.
 *
 * @internal
 * @packageDocumentation
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

import { hideSecrets, passwordsIn, redact } from '../redact.js';
import { flagOption, noPositionals } from './args.js';
import type { Command } from './command.js';
import { openRedis, shownUrl } from './command.js';
import { CliError, usage } from './errors.js';
import { ThrowawayRedis } from './redis_server.js';

/** Root of the package (dist/cli/..): a checkout, or the installed package. */
const root = path.resolve(__dirname, '..', '..');

/**
 * The compiled demo. In a checkout, compiled (again) from examples/ts/demo.ts when that is
 * newer; in an installed package, the one it ships (dist/examples/demo.js, built with dist/).
 */
function demoProgram(): string {
  const source = path.join(root, 'examples', 'ts', 'demo.ts');
  const program = path.join(root, 'build', 'examples', 'ts', 'demo.js');
  const shipped = path.join(root, 'dist', 'examples', 'demo.js');
  const hasSource = existsSync(source);
  if (!hasSource && existsSync(program)) return program;
  if (!hasSource && existsSync(shipped)) return shipped;
  if (!hasSource) {
    throw new CliError('DEMO', `the demo (dist/examples/demo.js) is missing from this installation (${root}): reinstall the package`);
  }
  if (existsSync(program) && statSync(program).mtimeMs >= statSync(source).mtimeMs) return program;
  const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
  if (!existsSync(tsc)) throw new CliError('DEMO', `examples/ts/demo.ts needs compiling and ${tsc} is missing: run 'npm install' first`);
  // Compiled into a directory of our own, then moved into place in one rename: another
  // process compiling or running the examples at the same time never sees a half-written file.
  mkdirSync(path.join(root, 'build'), { recursive: true });
  const scratch = mkdtempSync(path.join(root, 'build', '.liner-demo-'));
  try {
    const r = spawnSync(tsc, ['-p', path.join(root, 'tsconfig.examples.json'), '--outDir', scratch], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    });
    if (r.status !== 0) {
      const first = `${r.stdout}${r.stderr}`.split('\n').find((l) => l.trim()) ?? `exit ${r.status}`;
      throw new CliError('DEMO', `compiling examples/ts failed: ${first}`);
    }
    mkdirSync(path.dirname(program), { recursive: true });
    renameSync(path.join(scratch, 'demo.js'), program);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return program;
}

export const demo: Command = {
  name: 'demo',
  summary: "the README's demo: five short acts of the TypeScript API, on a temporary SQLite file",
  usage: 'liner demo [--store URL | --throwaway-redis] [--json]',
  description: [
    'Runs examples/ts/demo.ts, as `npm run demo` does: one-to-one, one-to-many,',
    'producer-consumer, offline delivery and a throughput figure. Without --store (or',
    '$LINER_STORE_URL) the peers share a temporary SQLite file, removed afterwards: nothing',
    'to install or start. --throwaway-redis starts a redis-server (it must be on PATH) on a',
    'free loopback port instead and stops it afterwards; with --store, the demo peers (names',
    'demo.*) use that store.',
  ].join('\n'),
  options: { 'throwaway-redis': flagOption('start a throwaway redis-server for the demo instead of an SQLite file') },
  async run(ctx) {
    const { out } = ctx;
    noPositionals(ctx.parsed);
    const program = demoProgram();
    let server: ThrowawayRedis | undefined;
    let sqliteDir: string | undefined;
    let url = ctx.storeUrl;
    if (ctx.parsed.options['throwaway-redis']) {
      if (ctx.storeExplicit) throw usage('--throwaway-redis and --store (or $LINER_STORE_URL) both say which store: give one');
      server = await ThrowawayRedis.start();
      url = server.url;
      out.note(`liner demo: throwaway redis-server on ${url}`);
    } else if (ctx.storeExplicit) {
      await openRedis(ctx);
    } else {
      sqliteDir = mkdtempSync(path.join(os.tmpdir(), 'liner-demo-'));
      url = `sqlite:${path.join(sqliteDir, 'mesh.db')}`;
      out.note(`liner demo: a temporary SQLite file, ${url.slice('sqlite:'.length)}`);
    }
    const started = Date.now();
    try {
      // The demo prints the URL it was given: with a password in it, its output is relayed
      // line by line without the password.
      const secrets = passwordsIn([url]);
      const filtered = secrets.length > 0;
      const child = spawn(process.execPath, [program, url], {
        stdio: ['ignore', out.json || filtered ? 'pipe' : 'inherit', filtered ? 'pipe' : 'inherit'],
      });
      const relay = (from: Readable | null, to: NodeJS.WritableStream): void => {
        if (!from) return;
        if (!filtered) from.pipe(to);
        else createInterface({ input: from, crlfDelay: Infinity }).on('line', (l) => to.write(`${hideSecrets(l, secrets)}\n`));
      };
      relay(child.stdout, out.json ? process.stderr : process.stdout); // --json: the demo's story goes to stderr
      relay(child.stderr, process.stderr);
      const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
      process.on('SIGINT', forward);
      process.on('SIGTERM', forward);
      // The demo bounds its own waits (well under 20 s); this only guards against a hang.
      const timer = setTimeout(() => child.kill(), 120_000);
      const code = await new Promise<number>((resolve) => child.once('close', (c, s) => resolve(c ?? (s ? 128 : 1))));
      clearTimeout(timer);
      process.removeListener('SIGINT', forward);
      process.removeListener('SIGTERM', forward);
      if (out.json) out.data({ store: ctx.storeExplicit ? shownUrl(ctx) : url, ok: code === 0, exitCode: code, seconds: (Date.now() - started) / 1000 });
      if (code !== 0) throw new CliError('DEMO', `the demo failed (exit ${code}) against ${redact(url)}`);
    } finally {
      await server?.stop();
      if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
    }
  },
};
