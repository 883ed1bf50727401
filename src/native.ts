/**
 * The native surface: what the Node-API addon (native/node/) exports, and how it is found.
 * Nothing here is public API; src/client.ts and the units it uses wrap it.
 *
 * @internal
 * @packageDocumentation
 */
import * as path from 'node:path';

import type { ClientStats, CoreStats } from './stats.js';

/** Options the addon reads when a NativeClient is constructed (validated by src/options.ts). */
export interface NativeOptions {
  name: string;
  topic: string;
  listen: string;
  store: string;
  advertise?: string;
  maxMessageSize?: number;
  compressThreshold?: number;
  maxSendQueueBytes?: number;
  maxSendQueueMessages?: number;
  maxReceiveQueueBytes?: number;
  maxInFlightBytes?: number;
  /** ms create and run keep trying a Redis that does not answer; absent: the process-wide value. */
  storeWaitMs?: number;
  /** Hand-over (ClientOptions.handover); absent: on. */
  handover?: boolean;
}

/**
 * One arena of received messages: the payloads back to back in `buffer`, and per message four
 * numbers in `meta`: offset, size, id of `to`, id of `from`. Ids index the client's name
 * table; names first seen in this arena come in `newNames`, in id order.
 */
export type NativeBatch = [buffer: Buffer, meta: Uint32Array, newNames: string[] | undefined];

/** A status event: [kind (StatusKind number), topic, peer address, message]. */
export type NativeEvent = [kind: number, topic: string, peer: string, message: string];

/** Counters of the core (when the core client exists and `withCore` is true) and of the delivery into JS. */
export type NativeStats = Partial<CoreStats> & Omit<ClientStats, keyof CoreStats>;

/**
 * A core client. Promise-returning methods run on libuv's thread pool and reject with an Error
 * carrying `lnrCode`; the synchronous ones run on the calling (JS) thread.
 */
export interface NativeClient {
  /** Creates the core client (checks that Redis answers). Idempotent. */
  open(): Promise<void>;
  /**
   * Starts it (applying the advertise address first); `onWake` is called on the JS thread
   * when messages or events wait. Resolves to [bound, published]. May follow a stop().
   */
  run(onWake: () => void): Promise<[bound: string, published: string]>;
  /** Stops it: unregisters, flushes, delivers the rest into the inbox. It may run again. */
  stop(): Promise<void>;
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  refresh(topic: string): Promise<void>;
  listAddresses(topic: string): Promise<[address: string, name: string][]>;
  /** This sender's offline queues in Redis. */
  pendingByPeer(): Promise<[address: string, topic: string, name: string, count: number][]>;
  clearStoredMessages(): Promise<void>;
  clearAddressesOfTopic(): Promise<void>;
  /**
   * Enqueues; returns 0 or a core error number (reason in lastError()). `topic` null means the
   * topic of the previous sendTo/sendAll call, whatever its outcome: a stream to one topic is
   * then not converted to UTF-8 once per message.
   */
  sendTo(topic: string | null, data: string | Uint8Array, atLeastOnce: boolean): number;
  sendAll(topic: string | null, data: string | Uint8Array, atLeastOnce: boolean): number;
  /**
   * Enqueues the messages (strings, TypedArrays, DataViews, ArrayBuffers; anything else throws
   * INVALID_ARGUMENT) in order to one peer. Returns how many were queued: fewer than all only
   * when the peer's queue filled up (BUSY); minus a core error number when none was (reason in
   * lastError()). `topic` as sendTo's.
   */
  sendToMany(topic: string | null, messages: readonly unknown[], atLeastOnce: boolean): number;
  lastError(): string;
  /** Checks the form of a literal "ip:port" ("" clears) and keeps it for the next run(); throws INVALID_ARG. */
  setAdvertise(address: string): void;
  /** The oldest waiting arena, or undefined (and the next message wakes JS). */
  take(): NativeBatch | undefined;
  /** Waiting status events; also marks the wake-up as handled. */
  takeEvents(): NativeEvent[] | undefined;
  /**
   * Core counters only when `withCore` (it waits for the core's lifecycle lock: never while
   * run() or stop() are in flight).
   */
  stats(withCore: boolean): NativeStats;
  ref(): void;
  unref(): void;
  /** After stop() and the last take(): releases everything; JS is not called again. */
  dispose(): void;
}

/** The records of the store a tool names (recordName): Redis key names, or patterns with '*'. */
export type NativeRecord =
  | 'topicAddresses' // (topic)
  | 'topicKey' // (topic)
  | 'channelName' // (sender name, sender topic, listener name)
  | 'channelSender' // (connection key)
  | 'channelAck' // (connection key)
  | 'channelQueue' // (connection key)
  | 'senderListeners' // (sender name, sender topic)
  | 'senderListenerNames'; // (sender name, sender topic)

/** A topic as the store knows it: its key (null when none was allocated) and who serves it, by address. */
export type NativeTopic = [topic: string, key: number | null, addresses: [address: string, name: string][]];

/** A channel: its connection key, names, what the store holds for it, and the topic key of its oldest queued frame. */
export type NativeChannel = [
  connectionKey: number,
  sender: string,
  senderTopic: string,
  listener: string,
  storedSenderTopic: string | null,
  lastAcked: number | null,
  queueLength: number,
  queuedTopicKey: number | null,
];

/**
 * The store of a mesh as tools read and clean it (native/core/directory_inspect.hpp), for the
 * `liner` command. The constructor checks the URL's form (throws INVALID_ARG); the Promise
 * methods run on libuv's thread pool, one at a time, and reject with an Error carrying `lnrCode`.
 */
export interface NativeDirectory {
  /** Connects (if not yet) and checks that the store answers. */
  ping(): Promise<void>;
  /** "host:port" of the Redis server the URL leads to now (redis+sentinel://: the master); "" for other stores. */
  server(): Promise<string>;
  /** Every topic, sorted; with `only`, that topic if the store has a directory or key for it. */
  topics(only?: string): Promise<NativeTopic[]>;
  /** Every channel (of one sender name), by connection key. */
  channels(sender?: string): Promise<NativeChannel[]>;
  /** Queue lengths and acks of these channels now, in their order. */
  sample(connectionKeys: number[]): Promise<[queueLength: number, lastAcked: number | null][]>;
  /** The source topics a sender name has channels or a sender->listener map under, sorted. */
  senderTopics(sender: string): Promise<string[]>;
  /** Non-empty offline queues whose connection key is not among `known`, by key. */
  unnamedQueues(known: number[]): Promise<[connectionKey: number, queueLength: number][]>;
  /** Messages waiting in the offline queues of sender `name` with source topic `topic`. */
  storedCount(name: string, topic: string): Promise<number>;
  /** Deletes every key a stopped one-off peer left behind (its channels, sender maps, and its topic's key if unserved). */
  forgetPeer(name: string, topic: string): Promise<void>;
  /** What the store calls a record (no I/O). */
  recordName(kind: NativeRecord, ...parts: string[]): string;
}

/** The process-wide limits of native/core/limits.hpp (shared by every thread's clients). */
export interface NativeLimits {
  maxMessageSize: number;
  compressThreshold: number;
  maxSendQueueMessages: number;
  maxSendQueueBytes: number;
  leaseMs: number;
}

export interface NativeAddon {
  NativeClient: {
    new (options: NativeOptions): NativeClient;
    /** The core's rule for a name a client registers ('name' or 'topic'): throws its error. */
    checkName(what: 'name' | 'topic', name: string): void;
  };
  NativeDirectory: new (url: string) => NativeDirectory;
  version: string;
  getLimits(): NativeLimits;
  /** Sets the keys present, all or none (throws INVALID_ARG with the core's message for a value out of range). */
  setLimits(limits: Partial<NativeLimits>): void;
}

/** Root of the package (dist/..): where prebuilds/ is, in a checkout and once installed. */
const packageRoot = path.resolve(__dirname, '..');

/**
 * Loads the addon: `$LINER_ADDON` if set (a path to a liner.node), else the binary for this
 * platform under prebuilds/ (node-gyp-build picks it; `npm run build` makes it in a checkout).
 */
function load(): NativeAddon {
  const explicit = process.env.LINER_ADDON;
  if (explicit) return require(path.resolve(explicit)) as NativeAddon;
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  return nodeGypBuild(packageRoot) as NativeAddon;
}

/** The addon of this environment (each worker thread loads its own instance). */
export const addon: NativeAddon = load();
