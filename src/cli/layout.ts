/**
 * The Redis key layout of a liner mesh (liner_broker 1.3.1's, see docs/routing-and-redis-keys.md),
 * and how the `liner` command reads it: the directory of topics, and the channels
 * (sender → listener) with their acknowledgement counters and offline queues.
 *
 *   lnr_unique_key                      counter for topic and connection keys
 *   lnr_topic:{topic}:addr              hash  address -> unique name
 *   lnr_topic:{topic}:key               topic key (decimal)
 *   lnr_connection:{U}:{S}:{L}:key      connection key of sender U (source topic S) -> listener L
 *   lnr_connection:{ck}:sender          the sender's source topic
 *   lnr_connection:{ck}:mess_number     last message number the listener delivered (the ack)
 *   lnr_connection:{ck}:messages        offline queue: list of whole frames
 *   lnr_sender:{U}:{S}:listener         hash  listener address -> listener topic
 *   lnr_sender:{U}:{S}:listener_name    liner only: hash  listener address -> listener name
 *
 * Reads use SCAN, never KEYS, and pipelined commands.
 *
 * @internal
 * @packageDocumentation
 */
import type { Reply, RespClient } from './resp.js';

/** The topic liner_broker >= 1.3.2 peers use for their control messages. */
export const INTERNAL_TOPIC = '__#internal_channel';

export const keys = {
  topicAddr: (topic: string): string => `lnr_topic:${topic}:addr`,
  topicKey: (topic: string): string => `lnr_topic:${topic}:key`,
  connectionKey: (u: string, s: string, l: string): string => `lnr_connection:${u}:${s}:${l}:key`,
  channel: (ck: number, field: 'sender' | 'mess_number' | 'messages'): string => `lnr_connection:${ck}:${field}`,
  senderListeners: (u: string, s: string): string => `lnr_sender:${u}:${s}:listener`,
  senderListenerNames: (u: string, s: string): string => `lnr_sender:${u}:${s}:listener_name`,
};

/** Escapes glob characters, for SCAN MATCH patterns built from names. */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** One peer registered under a topic. */
export interface DirectoryEntry {
  address: string;
  name: string;
}

/** A topic as Redis knows it. */
export interface TopicInfo {
  topic: string;
  /** `lnr_topic:{topic}:key`, or null when none was allocated yet. */
  key: number | null;
  /** `lnr_topic:{topic}:addr`: who serves it now (liner peers remove themselves on close). */
  addresses: DirectoryEntry[];
  /** The distinct unique names among the addresses. */
  names: string[];
  /** liner_broker's control channel. */
  internal: boolean;
}

/** One sender → listener channel. */
export interface ChannelInfo {
  /** The connection key (`ck`): the channel's number on the wire and in key names. */
  connectionKey: number;
  /** `lnr_connection:{U}:{S}:{L}:key`. */
  connectionKeyName: string;
  sender: string;
  /** The sender's source topic, from the key name. */
  senderTopic: string;
  /** `lnr_connection:{ck}:sender`: what the listener reports as `from` (null if missing). */
  storedSenderTopic: string | null;
  listener: string;
  /** Last message number the listener delivered (`mess_number`), null if never written. */
  lastAcked: number | null;
  /** Frames waiting in `lnr_connection:{ck}:messages`. */
  queueLength: number;
  /** Destination topic of the oldest queued frame (from its topic key), when there is one. */
  queuedFor: string | null;
  /** Where the sender and the listener are registered now. */
  senderAddresses: (DirectoryEntry & { topic: string })[];
  listenerAddresses: (DirectoryEntry & { topic: string })[];
}

function text(r: Reply): string | null {
  return Buffer.isBuffer(r) ? r.toString('utf8') : typeof r === 'string' ? r : r === null ? null : String(r);
}

function int(r: Reply): number | null {
  const t = text(r);
  if (t === null || !/^-?\d+$/.test(t)) return null;
  return Number(t);
}

function hashPairs(r: Reply): [string, string][] {
  const flat = Array.isArray(r) ? r : [];
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([text(flat[i]!) ?? '', text(flat[i + 1]!) ?? '']);
  return out;
}

function between(name: string, prefix: string, suffix: string): string | undefined {
  if (!name.startsWith(prefix) || !name.endsWith(suffix) || name.length < prefix.length + suffix.length) return undefined;
  return name.slice(prefix.length, name.length - suffix.length);
}

/** Every topic with a directory or a key, sorted by name. */
export async function readTopics(redis: RespClient, only?: string): Promise<TopicInfo[]> {
  const names = new Set<string>();
  if (only !== undefined) {
    names.add(only);
  } else {
    for (const k of await redis.scan('lnr_topic:*:addr')) {
      const t = between(k, 'lnr_topic:', ':addr');
      if (t !== undefined) names.add(t);
    }
    for (const k of await redis.scan('lnr_topic:*:key')) {
      const t = between(k, 'lnr_topic:', ':key');
      if (t !== undefined) names.add(t);
    }
  }
  const topics = [...names].sort();
  const replies = await redis.pipeline(topics.flatMap((t) => [['HGETALL', keys.topicAddr(t)], ['GET', keys.topicKey(t)]]));
  const out: TopicInfo[] = [];
  topics.forEach((topic, i) => {
    const addresses = hashPairs(replies[2 * i]!)
      .map(([address, name]) => ({ address, name }))
      .sort((a, b) => a.address.localeCompare(b.address));
    const key = int(replies[2 * i + 1]!);
    if (only !== undefined && key === null && addresses.length === 0) return;
    out.push({ topic, key, addresses, names: [...new Set(addresses.map((a) => a.name))].sort(), internal: topic === INTERNAL_TOPIC });
  });
  return out;
}

/** The parts of `lnr_connection:{U}:{S}:{L}:key`, or undefined for another key (or names with ':'). */
export function parseConnectionKeyName(name: string): { sender: string; senderTopic: string; listener: string } | undefined {
  const middle = between(name, 'lnr_connection:', ':key');
  if (middle === undefined) return undefined;
  const parts = middle.split(':');
  if (parts.length !== 3 || parts.some((p) => p === '')) return undefined;
  return { sender: parts[0]!, senderTopic: parts[1]!, listener: parts[2]! };
}

/** Which channels to read: all, or those of one sender name, or those touching one topic. */
export interface ChannelFilter {
  sender?: string;
  topic?: string;
}

/**
 * Every channel (sender → listener) with its counters, optionally filtered. `topics` is the
 * directory (from readTopics), used to tell who is online and to name queued frames.
 */
export async function readChannels(redis: RespClient, topics: TopicInfo[], filter: ChannelFilter = {}): Promise<ChannelInfo[]> {
  const pattern = filter.sender !== undefined ? `lnr_connection:${globEscape(filter.sender)}:*:*:key` : 'lnr_connection:*:key';
  const names: { name: string; sender: string; senderTopic: string; listener: string }[] = [];
  for (const name of await redis.scan(pattern)) {
    const p = parseConnectionKeyName(name);
    if (p && (filter.sender === undefined || p.sender === filter.sender)) names.push({ name, ...p });
  }
  const cks = (await redis.pipeline(names.map((n) => ['GET', n.name]))).map(int);
  const found = names.map((n, i) => ({ ...n, ck: cks[i]! })).filter((n): n is typeof n & { ck: number } => n.ck !== null);
  const details = await redis.pipeline(
    found.flatMap((c) => [
      ['GET', keys.channel(c.ck, 'sender')],
      ['GET', keys.channel(c.ck, 'mess_number')],
      ['LLEN', keys.channel(c.ck, 'messages')],
      ['LRANGE', keys.channel(c.ck, 'messages'), 0, 0],
    ]),
  );
  const byName = new Map<string, (DirectoryEntry & { topic: string })[]>();
  const topicByKey = new Map<number, string>();
  for (const t of topics) {
    if (t.key !== null) topicByKey.set(t.key, t.topic);
    for (const a of t.addresses) {
      const list = byName.get(a.name) ?? [];
      list.push({ ...a, topic: t.topic });
      byName.set(a.name, list);
    }
  }
  const channels = found.map((c, i): ChannelInfo => {
    const head = details[4 * i + 3];
    const frame = Array.isArray(head) && Buffer.isBuffer(head[0]) ? head[0] : undefined;
    // Frame: u32 body_len, u64 number_mess, i32 ck, i32 tk (the destination topic's key), …
    const tk = frame && frame.length >= 20 ? frame.readInt32BE(16) : undefined;
    return {
      connectionKey: c.ck,
      connectionKeyName: c.name,
      sender: c.sender,
      senderTopic: c.senderTopic,
      storedSenderTopic: text(details[4 * i]!),
      listener: c.listener,
      lastAcked: int(details[4 * i + 1]!),
      queueLength: Number(details[4 * i + 2] ?? 0),
      queuedFor: tk === undefined ? null : topicByKey.get(tk) ?? `topic key ${tk}`,
      senderAddresses: byName.get(c.sender) ?? [],
      listenerAddresses: byName.get(c.listener) ?? [],
    };
  });
  const t = filter.topic;
  return channels
    .filter(
      (c) =>
        t === undefined ||
        c.senderTopic === t ||
        c.queuedFor === t ||
        c.listenerAddresses.some((a) => a.topic === t),
    )
    .sort((a, b) => a.connectionKey - b.connectionKey);
}

/** The source topics a sender name has channels or a sender→listener map under. */
export async function senderTopicsOf(redis: RespClient, sender: string): Promise<string[]> {
  const topics = new Set<string>();
  const u = globEscape(sender);
  for (const name of await redis.scan(`lnr_sender:${u}:*:listener`)) {
    const s = between(name, `lnr_sender:${sender}:`, ':listener');
    if (s !== undefined && !s.includes(':')) topics.add(s);
  }
  for (const name of await redis.scan(`lnr_connection:${u}:*:*:key`)) {
    const p = parseConnectionKeyName(name);
    if (p && p.sender === sender) topics.add(p.senderTopic);
  }
  return [...topics].sort();
}

/** Queue lengths and acks of some channels now (for a second sample). */
export async function sampleChannels(redis: RespClient, cks: number[]): Promise<Map<number, { queueLength: number; lastAcked: number | null }>> {
  const replies = await redis.pipeline(cks.flatMap((ck) => [['LLEN', keys.channel(ck, 'messages')], ['GET', keys.channel(ck, 'mess_number')]]));
  const out = new Map<number, { queueLength: number; lastAcked: number | null }>();
  cks.forEach((ck, i) => out.set(ck, { queueLength: Number(replies[2 * i] ?? 0), lastAcked: int(replies[2 * i + 1]!) }));
  return out;
}

/**
 * Offline queues that belong to no channel this command can name: their connection-key name is
 * gone, or was written with names containing ':' (which the key layout cannot split back).
 */
export async function unnamedQueues(redis: RespClient, known: ReadonlySet<number>): Promise<{ connectionKey: number; queueLength: number }[]> {
  const cks: number[] = [];
  for (const name of await redis.scan('lnr_connection:*:messages')) {
    const middle = between(name, 'lnr_connection:', ':messages');
    if (middle !== undefined && /^-?\d+$/.test(middle) && !known.has(Number(middle))) cks.push(Number(middle));
  }
  const lengths = await redis.pipeline(cks.map((ck) => ['LLEN', keys.channel(ck, 'messages')]));
  return cks.map((ck, i) => ({ connectionKey: ck, queueLength: Number(lengths[i] ?? 0) })).filter((q) => q.queueLength > 0).sort((a, b) => a.connectionKey - b.connectionKey);
}
