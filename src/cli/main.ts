#!/usr/bin/env node
/**
 * The `liner` command (the package's `bin`): operator tooling for a liner mesh.
 *
 *   liner topics | inspect | listen | send | bench | demo | purge   [--redis URL] [--json]
 *
 * Every command prints plain text for people (colour only on a terminal) or, with --json,
 * JSON for scripts; a failure is one line on stderr and a non-zero exit status (2: bad usage,
 * 1: anything else). docs/cli.md documents each command.
 *
 * @internal
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

import { hideSecrets, passwordsIn } from '../redact.js';
import { GLOBAL_OPTIONS, helpText, parse, type Parsed } from './args.js';
import { bench } from './bench.js';
import type { Command } from './command.js';
import { demo } from './demo.js';
import { CliError, toCliError, usage } from './errors.js';
import { inspect } from './inspect.js';
import { Directory } from './layout.js';
import { listen } from './listen.js';
import { Output } from './output.js';
import { purge } from './purge.js';
import { send } from './send.js';
import { topics } from './topics.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379/0';

const COMMANDS: readonly Command[] = [topics, inspect, listen, send, bench, demo, purge];

function version(): string {
  try {
    return (JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Where the CLI's documentation is: the copy in this package (a checkout or the installed one), else online. */
function cliDoc(): string {
  const local = path.resolve(__dirname, '..', '..', 'docs', 'cli.md');
  return existsSync(local) ? local : 'https://github.com/liner-broker/liner/blob/main/docs/cli.md';
}

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: liner <command> [options]',
    '',
    'Operator tooling for a liner mesh: who serves which topic, which queues are stuck, and',
    'peers for a quick look (listen, send, bench). The store: --store URL (sqlite:FILE or',
    `redis://…), else $LINER_STORE_URL, else $LINER_REDIS_URL, else ${DEFAULT_REDIS_URL}.`,
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'options of every command: --store URL (alias --redis), --json, --no-color, -h/--help',
    `'liner <command> --help' for a command's options; everything: ${cliDoc()}`,
  ].join('\n');
}

/** Runs the command line `argv` (without node and the script); resolves to the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  // Output options are known before anything can fail, so errors honour --json.
  const out = new Output({ json: argv.includes('--json'), noColor: argv.includes('--no-color') });
  let commandName = '';
  try {
    const index = argv.findIndex((a) => !a.startsWith('-'));
    // A value of a global option ("--redis URL") is not the command.
    const first = index > 0 && argv[index - 1] === '--redis' ? argv.findIndex((a, i) => i > index && !a.startsWith('-')) : index;
    if (argv.includes('--version') && first < 0) {
      out.line(version());
      return 0;
    }
    if (first < 0) {
      if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
        out.line(mainHelp());
        return argv.length === 0 ? 2 : 0;
      }
      parse(argv, {}); // reports the unknown option, if any
      throw usage("which command? 'liner --help' lists them");
    }
    commandName = argv[first]!;
    const command = COMMANDS.find((c) => c.name === commandName);
    if (!command) {
      const name = commandName;
      commandName = '';
      throw usage(`unknown command '${name}': one of ${COMMANDS.map((c) => c.name).join(', ')}`);
    }
    const rest = [...argv.slice(0, first), ...argv.slice(first + 1)];
    const parsed = parse(rest, command.options);
    if (parsed.options.help) {
      out.line(helpText(command.usage, command.description, command.options));
      return 0;
    }
    const fromOption = storeOption(parsed);
    const fromEnv = process.env.LINER_STORE_URL || process.env.LINER_REDIS_URL || undefined;
    const storeUrl = fromOption ?? fromEnv ?? DEFAULT_REDIS_URL;
    Directory.checkUrl(storeUrl);
    const status = await command.run({ parsed, storeUrl, storeExplicit: fromOption !== undefined || fromEnv !== undefined, out });
    return status ?? 0;
  } catch (e) {
    const error = toCliError(e);
    out.error(commandName, withoutPasswords(error, [...argv, process.env.LINER_STORE_URL ?? '', process.env.LINER_REDIS_URL ?? '']));
    return error.exitCode;
  }
}

/**
 * The last guard before a failure is printed: its message repeats no password given on the
 * command line or in $LINER_REDIS_URL, wherever it came from (a URL typed where a command or an
 * argument goes, a server that echoes what it was sent). URLs the commands print themselves
 * are redacted where they are printed.
 */
/** --store, or its alias --redis: one of the two, or both the same. */
function storeOption(parsed: Parsed): string | undefined {
  const store = parsed.options.store as string | undefined;
  const redis = parsed.options.redis as string | undefined;
  if (store !== undefined && redis !== undefined && store !== redis) throw usage('--store and --redis name the same thing: give one of the two');
  return store ?? redis;
}

function withoutPasswords(error: CliError, texts: readonly string[]): CliError {
  const message = hideSecrets(error.message, passwordsIn(texts));
  return message === error.message ? error : new CliError(error.code, message);
}

if (require.main === module) {
  // A closed pipe (`liner listen | head`) ends the command quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
  });
  void main(process.argv.slice(2)).then((status) => {
    process.exitCode = status;
  });
}

export { CliError, GLOBAL_OPTIONS };
