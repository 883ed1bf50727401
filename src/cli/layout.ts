/**
 * How the `liner` command reads and cleans a mesh's store: through the native addon's
 * NativeDirectory, so with the core's Redis client, URL parser and key layout
 * (native/core/directory_inspect.hpp over native/core/redis_store_inspect.cpp). What is left here
 * is the commands' view: the directory of topics and the channels (sender → listener) joined
 * with it, and the core's failures as the command's one-line errors.
 *
 * @internal
 * @packageDocumentation
 */
import { codeOf } from '../errors.js';
import type { NativeChannel, NativeDirectory, NativeRecord, NativeTopic } from '../native.js';
import { CliError } from './errors.js';

/** The topic liner_broker >= 1.3.2 peers use for their control messages. */
export const INTERNAL_TOPIC = '__#internal_channel';

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

/** Which channels to read: all, or those of one sender name, or those touching one topic. */
export interface ChannelFilter {
  sender?: string;
  topic?: string;
}

// The core's reasons for an unreachable Redis (hiredis's strerror text), as the command says them.
function reachReason(why: string): string {
  if (/no such file or directory/i.test(why)) return 'no such socket';
  if (/timed out|temporarily unavailable/i.test(why)) return 'timed out';
  if (/name or service not known|nodename nor servname/i.test(why)) return 'unknown host';
  return why.charAt(0).toLowerCase() + why.slice(1);
}

/**
 * A failure of the addon (an Error with the core's `lnrCode`; its message never holds a
 * password) as the command's error; anything else unchanged.
 */
export function cliErrorOf(error: unknown): unknown {
  const lnrCode = (error as { lnrCode?: unknown } | undefined)?.lnrCode;
  if (!(error instanceof Error) || typeof lnrCode !== 'number') return error;
  const message = error.message;
  const code = codeOf(lnrCode);
  const bad = /^invalid redis url (.*): (.*)$/s.exec(message);
  if (code === 'INVALID_ARGUMENT' && bad) {
    return new CliError('BAD_URL', `invalid Redis URL ${bad[1]}: ${bad[2]}`);
  }
  if (code === 'INVALID_ARGUMENT' && /^no store serves /.test(message)) return new CliError('BAD_URL', message);
  if (code !== 'STORE') return new CliError(code, message);
  if (!/^redis /.test(message)) return new CliError('STORE_ERROR', message); // another store's (SQLite's) own words
  const unreachable = /^redis unreachable at (.*?): (.*)$/s.exec(message);
  if (unreachable) return new CliError('REDIS_UNREACHABLE', `cannot reach Redis at ${unreachable[1]} (${reachReason(unreachable[2]!)})`);
  const refused = /^redis (?:AUTH|SELECT) failed: (.*)$/s.exec(message);
  if (refused) return new CliError('REDIS_ERROR', `Redis refused the connection: ${refused[1]}`);
  const text = message.replace(/^redis /, 'Redis ');
  return new CliError(/^Redis (did not answer|connection lost|subscription)/.test(text) ? 'REDIS_UNREACHABLE' : 'REDIS_ERROR', text);
}

/** The store of a mesh, as the commands read and clean it. */
export class Directory {
  readonly #native: NativeDirectory;

  /** Checks the URL's form (CliError BAD_URL); connects on first use. Loads the native addon. */
  constructor(url: string) {
    // Loaded here, not on import: `liner --help` and usage errors never load the addon.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { addon } = require('../native.js') as typeof import('../native.js');
    try {
      this.#native = new addon.NativeDirectory(url);
    } catch (e) {
      throw cliErrorOf(e);
    }
  }

  /** Checks the form of a Redis URL with the core's parser (CliError BAD_URL); connects to nothing. */
  static checkUrl(url: string): void {
    void new Directory(url);
  }

  async #call<T>(call: (native: NativeDirectory) => Promise<T>): Promise<T> {
    try {
      return await call(this.#native);
    } catch (e) {
      throw cliErrorOf(e);
    }
  }

  /** What the store calls a record: Redis key names (patterns with '*'), for messages. */
  name(kind: NativeRecord, ...parts: (string | number)[]): string {
    return this.#native.recordName(kind, ...parts.map(String));
  }

  /** "host:port" of the Redis server in use (behind Sentinel: the master now); "" for other stores. */
  server(): Promise<string> {
    return this.#call((n) => n.server());
  }

  /** Connects and checks that Redis answers. */
  ping(): Promise<void> {
    return this.#call((n) => n.ping());
  }

  /** Every topic with a directory or a key, sorted by name; with `only`, that one if Redis has it. */
  async readTopics(only?: string): Promise<TopicInfo[]> {
    const rows = await this.#call((n) => n.topics(only));
    return rows.map(([topic, key, pairs]: NativeTopic): TopicInfo => {
      const addresses = pairs.map(([address, name]) => ({ address, name }));
      return { topic, key, addresses, names: [...new Set(addresses.map((a) => a.name))].sort(), internal: topic === INTERNAL_TOPIC };
    });
  }

  /**
   * Every channel (sender → listener) with its counters, optionally filtered. `topics` is the
   * directory (from readTopics), used to tell who is online and to name queued frames.
   */
  async readChannels(topics: TopicInfo[], filter: ChannelFilter = {}): Promise<ChannelInfo[]> {
    const rows = await this.#call((n) => n.channels(filter.sender));
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
    const channels = rows.map(
      ([connectionKey, sender, senderTopic, listener, storedSenderTopic, lastAcked, queueLength, tk]: NativeChannel): ChannelInfo => ({
        connectionKey,
        connectionKeyName: this.name('channelName', sender, senderTopic, listener),
        sender,
        senderTopic,
        storedSenderTopic,
        listener,
        lastAcked,
        queueLength,
        queuedFor: tk === null ? null : topicByKey.get(tk) ?? `topic key ${tk}`,
        senderAddresses: byName.get(sender) ?? [],
        listenerAddresses: byName.get(listener) ?? [],
      }),
    );
    const t = filter.topic;
    return channels.filter(
      (c) => t === undefined || c.senderTopic === t || c.queuedFor === t || c.listenerAddresses.some((a) => a.topic === t),
    );
  }

  /** The source topics a sender name has channels or a sender→listener map under. */
  senderTopicsOf(sender: string): Promise<string[]> {
    return this.#call((n) => n.senderTopics(sender));
  }

  /** Queue lengths and acks of some channels now (for a second sample). */
  async sampleChannels(cks: number[]): Promise<Map<number, { queueLength: number; lastAcked: number | null }>> {
    const rows = await this.#call((n) => n.sample(cks));
    return new Map(cks.map((ck, i) => [ck, { queueLength: rows[i]![0], lastAcked: rows[i]![1] }]));
  }

  /**
   * Offline queues that belong to no channel this command can name: their connection-key name is
   * gone, or was written with names containing ':' (which the key layout cannot split back).
   */
  async unnamedQueues(known: ReadonlySet<number>): Promise<{ connectionKey: number; queueLength: number }[]> {
    const rows = await this.#call((n) => n.unnamedQueues([...known]));
    return rows.map(([connectionKey, queueLength]) => ({ connectionKey, queueLength }));
  }

  /** Messages waiting in the offline queues of sender `name`/`topic`. */
  storedCount(name: string, topic: string): Promise<number> {
    return this.#call((n) => n.storedCount(name, topic));
  }

  /**
   * Deletes every key a closed, one-off peer of this command left behind (its channels, its
   * sender→listener map, its own topic's key when nobody serves that topic): such a name is
   * never used again. Only for names made by ephemeralName().
   */
  forgetPeer(name: string, topic: string): Promise<void> {
    return this.#call((n) => n.forgetPeer(name, topic));
  }
}
