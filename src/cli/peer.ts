/**
 * What the commands that join the mesh (listen, send, bench, purge) share: loading the liner
 * Client (only then: `topics` and `inspect` never load the native addon), names for the
 * command's own peers, sends that wait while a queue is full, and removing the keys of a
 * peer that will never come back.
 *
 * @internal
 * @packageDocumentation
 */
import * as os from 'node:os';

import type { Client, Payload } from '../index.js';
import { CliError, usage } from './errors.js';
import { globEscape, keys, parseConnectionKeyName } from './layout.js';
import type { RespClient } from './resp.js';

/** The liner API, loaded on first use (it loads the native addon). */
export function liner(): typeof import('../index.js') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../index.js') as typeof import('../index.js');
}

/**
 * A unique name for a peer of this command: `liner-<what>-<host>-<pid>`. Names are part of
 * Redis key names, so ':' and '\' are replaced.
 */
export function ephemeralName(what: string): string {
  const host = os.hostname().replace(/[:\\\s]/g, '-') || 'host';
  return `liner-${what}-${host}-${process.pid}`;
}

/** Checks a name given on the command line the way the Client would, with a CLI message. */
export function checkName(option: string, name: string): string {
  if (/[:\\]/.test(name)) throw usage(`--${option} '${name}' must not contain ':' or '\\' (they are key separators in Redis)`);
  return name;
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

/** The channels (listener name, connection key) of sender `name` with source topic `topic`. */
export async function channelsOf(redis: RespClient, name: string, topic: string): Promise<{ listener: string; ck: number; keyName: string }[]> {
  const found = await redis.scan(`lnr_connection:${globEscape(name)}:${globEscape(topic)}:*:key`);
  const out: { listener: string; ck: number; keyName: string }[] = [];
  for (const keyName of found) {
    const p = parseConnectionKeyName(keyName);
    if (!p || p.sender !== name || p.senderTopic !== topic) continue;
    const v = await redis.command('GET', keyName);
    const ck = Buffer.isBuffer(v) && /^-?\d+$/.test(v.toString()) ? Number(v.toString()) : undefined;
    if (ck !== undefined) out.push({ listener: p.listener, ck, keyName });
  }
  return out;
}

/** Messages waiting in the offline queues of sender `name`/`topic`. */
export async function storedCount(redis: RespClient, name: string, topic: string): Promise<number> {
  const channels = await channelsOf(redis, name, topic);
  const lengths = await redis.pipeline(channels.map((c) => ['LLEN', keys.channel(c.ck, 'messages')]));
  return lengths.reduce<number>((sum, n) => sum + Number(n ?? 0), 0);
}

/**
 * Deletes every key a closed, one-off peer of this command left behind (its channels, its
 * sender→listener map, its own topic's key when nobody serves that topic): such a name is
 * never used again. Only for names made by ephemeralName().
 */
export async function forgetPeer(redis: RespClient, name: string, topic: string): Promise<void> {
  const doomed: string[] = [keys.senderListeners(name, topic), keys.senderListenerNames(name, topic)];
  for (const c of await channelsOf(redis, name, topic)) {
    doomed.push(c.keyName, keys.channel(c.ck, 'sender'), keys.channel(c.ck, 'mess_number'), keys.channel(c.ck, 'messages'));
  }
  const served = (await redis.command('HLEN', keys.topicAddr(topic))) as number;
  if (served === 0) doomed.push(keys.topicKey(topic), keys.topicAddr(topic));
  await redis.command('DEL', ...doomed);
}
