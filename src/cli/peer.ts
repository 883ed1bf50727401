/**
 * What the commands that join the mesh (listen, send, bench, purge) share: loading the liner
 * Client (only then: `topics` and `inspect` never start a client), names for the command's own
 * peers, and sends that wait while a queue is full. Removing the keys of a peer that will
 * never come back is Directory.forgetPeer (layout.ts).
 *
 * @internal
 * @packageDocumentation
 */
import * as os from 'node:os';

import type { Client, Payload } from '../index.js';
import type { Parsed } from './args.js';
import { stringOption } from './args.js';
import type { Context } from './command.js';
import { CliError, usage } from './errors.js';

/** The liner API, loaded on first use (it loads the native addon). */
export function liner(): typeof import('../index.js') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../index.js') as typeof import('../index.js');
}

/**
 * A client of the command's Redis, not started. It does not wait for a Redis that is down: an
 * operator's command says so at once, instead of the library's 10 s wait.
 */
export function openClient(ctx: Context, name: string, topic: string, listen?: string): Client {
  const { Client } = liner();
  return new Client({ name, topic, store: ctx.storeUrl, waitForRedis: 0, listen });
}

/**
 * A unique name for a peer of this command: `liner-<what>-<host>-<pid>`. Names are part of
 * Redis key names, so ':' and '\' are replaced.
 */
export function ephemeralName(what: string): string {
  const host = os.hostname().replace(/[:\\\s]/g, '-') || 'host';
  return `liner-${what}-${host}-${process.pid}`;
}

// What each option that takes a name names: a peer's unique name or a topic.
const NAME_KINDS: Record<string, 'name' | 'topic'> = { name: 'name', from: 'name', sender: 'name', topic: 'topic', subscribe: 'topic' };

/**
 * Checks a name given with `--option` by the core's rule (the Client's, in every language): a
 * usage error with the core's message.
 */
export function checkName(option: string, name: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { addon } = require('../native.js') as typeof import('../native.js');
  try {
    addon.NativeClient.checkName(NAME_KINDS[option] ?? 'name', name);
  } catch (e) {
    throw usage(e instanceof Error ? e.message : String(e));
  }
  return name;
}

/** The name given with `--option`, checked as checkName does (undefined when absent). */
export function nameOption(parsed: Parsed, option: string): string | undefined {
  const given = stringOption(parsed, option);
  return given === undefined ? undefined : checkName(option, given);
}

/** sendTo/sendAll that waits with drain() while the peer's queue is full, up to `deadline`. */
export async function sendPatiently(client: Client, all: boolean, topic: string, data: Payload, atLeastOnce: boolean, deadline: number): Promise<number> {
  let busy = 0;
  for (;;) {
    try {
      if (all) client.sendAll(topic, data, { atLeastOnce });
      else client.sendTo(topic, data, { atLeastOnce });
      return busy;
    } catch (e) {
      if ((e as { code?: string }).code !== 'BUSY') throw e;
      if (Date.now() > deadline) throw new CliError('TIMEOUT', `the send queue to ${topic} stayed full until the deadline`);
      busy++;
      await client.drain();
    }
  }
}
