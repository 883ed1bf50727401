// Runs the `liner` command (dist/cli/main.js) for the cli_*.test.ts files: to completion
// (`liner()`, `linerJson()`, `expectFailure()`) or in the background (`spawnLiner()`), with an
// environment that does not leak the developer's Redis URL or colour settings, and bounded waits.
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect } from 'vitest';

import { freePort } from './net.js';

export const root = path.resolve(__dirname, '../../..');
export const cliPath = path.join(root, 'dist', 'cli', 'main.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function env(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['LINER_STORE_URL', 'LINER_REDIS_URL', 'NO_COLOR', 'FORCE_COLOR']) delete e[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete e[k];
    else e[k] = v;
  }
  return e;
}

/** Runs `liner ...args` to its end (killed after `timeoutMs`). */
export function liner(args: string[], options: { input?: string | Buffer; env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { cwd: root, env: env(options.env ?? {}), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Runs `liner ...args`, which must succeed, and parses what it printed (a `--json` command). */
export async function linerJson<T>(args: string[]): Promise<T> {
  const r = await liner(args);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** Runs `liner ...args`, which must exit with `code` and write one line of its own to stderr, matching `line`. */
export async function expectFailure(args: string[], code: number, line: RegExp): Promise<void> {
  const r = await liner(args);
  expect(r.code, args.join(' ')).toBe(code);
  expect(ownLines(r.stderr), args.join(' ')).toEqual([expect.stringMatching(line)]);
}

/** A running `liner` process, for commands that keep running (listen). */
export class Background {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d) => (this.stdout += d));
    child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.once('close', (code) => resolve(code)));
  }

  /** Resolves once `text` appeared on stderr (or rejects when the process ended or time ran out). */
  async waitStderr(text: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stderr.includes(text)) {
      if (this.child.exitCode !== null || Date.now() > deadline) throw new Error(`no '${text}' from liner; stderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Waits for the exit (killing the process after `timeoutMs`). */
  async wait(timeoutMs = 15_000): Promise<number | null> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

export function spawnLiner(args: string[], extraEnv: Record<string, string | undefined> = {}): Background {
  return new Background(spawn(process.execPath, [cliPath, ...args], { cwd: root, env: env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] }));
}

/**
 * The lines the command itself wrote to stderr: without the core's own log lines, which the
 * native library prints as "liner: …" (the command's failure line is "liner <command>: …").
 */
export function ownLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !l.startsWith('liner: '));
}

/** A redis:// URL where nothing listens (a port that was free a moment ago). */
export async function deadRedisUrl(): Promise<string> {
  return `redis://127.0.0.1:${await freePort()}/0`;
}

/** The database number of a redis:// URL. */
export function dbOf(url: string): number {
  return Number(/\/(\d+)$/.exec(url)?.[1] ?? 0);
}

// eslint-disable-next-line no-control-regex
export const ANSI = /\x1b\[[0-9;]*m/;
