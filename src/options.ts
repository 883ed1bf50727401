/**
 * The options of a client: {@link ClientOptions}, and how the constructor checks them and
 * turns them into what the addon takes (absent values become the defaults, 0 in a limit
 * becomes "the process-wide value").
 *
 * @packageDocumentation
 */
import { checkName, describe, invalid } from './arguments.js';
import type { NativeOptions } from './native.js';
import { redact } from './redact.js';

/**
 * Options of {@link Client}. Sizes are in bytes.
 *
 * The four limits (`maxMessageSize`, `compressThreshold`, `maxSendQueueBytes`,
 * `maxSendQueueMessages`) are this client's own; absent or 0 means "the process-wide value"
 * (see `getLimits()` / `setLimits()`), read when it is needed, so a later `setLimits()` applies
 * to this client too.
 */
export interface ClientOptions {
  /**
   * Name of this client, unique across the mesh (it is part of Redis key names). Restarting
   * with the same name and topic resumes the same channels: pending at-least-once messages
   * and acknowledgements.
   */
  name: string;
  /**
   * The client's own topic: what it listens on, and what receivers see as `from`. Several
   * clients may share a topic (replicas): `sendTo` round-robins over them, `sendAll` reaches all.
   */
  topic: string;
  /** TCP address to listen on, `"host:port"` or `"[v6]:port"`; port 0 picks a free one. Default `"127.0.0.1:0"`. */
  listen?: string;
  /**
   * The store the mesh shares (its directory, offline queues and acknowledgements), by URL:
   * - `"sqlite:mesh.db"`, `"sqlite:///abs/path/mesh.db"`: an SQLite file, for peers on one host,
   *   no server needed (docs/using-sqlite.md);
   * - `"redis://[user:pass@]host[:port][/db]"`, `"unix:///path/to/socket"`: a Redis server, for
   *   peers on several hosts (docs/using-redis.md);
   *   `"rediss://…?ca=FILE&cert=FILE&key=FILE&sni=NAME"` over TLS (the server always verified),
   *   `"redis+sentinel://h1:p1,h2:p2/master_name[/db]"` behind Sentinel,
   *   `"redis+cluster://h1:p1,h2:p2"` on a Cluster (`rediss+…` for either over TLS).
   *
   * Another scheme throws `INVALID_ARGUMENT` naming the ones there are. Default
   * `"redis://127.0.0.1:6379/0"`.
   */
  store?: string;
  /** The same as `store` (its name before there were other stores); give one of the two. */
  redis?: string;
  /**
   * Address to register in Redis instead of the bound one, for a client listening on
   * `0.0.0.0` (or behind a port mapping): peers connect to it as given, so it must be a
   * literal `"ip:port"` or `"[v6]:port"` (no host names). Port 0 stands for the bound port:
   * `listen: '0.0.0.0:0', advertise: '10.0.0.5:0'` registers `10.0.0.5:<the port it got>`.
   * Default: the bound address. See also {@link Client.setAdvertiseAddress}.
   */
  advertise?: string;
  /**
   * Largest payload this client sends (larger ones throw `INVALID_ARGUMENT`) and accepts (a
   * peer sending a larger frame is disconnected). At most 1 GiB minus the 21-byte frame
   * header, which is also the process-wide default.
   */
  maxMessageSize?: number;
  /** Payloads larger than this are zstd-compressed on the wire. Process-wide default 1 MiB. */
  compressThreshold?: number;
  /** Per peer: bytes queued or awaiting acknowledgement before sends to it throw `BUSY`. Process-wide default 8 MiB. */
  maxSendQueueBytes?: number;
  /** Per peer: messages queued or awaiting acknowledgement before sends to it throw `BUSY`. Process-wide default: no count limit. */
  maxSendQueueMessages?: number;
  /** Same as `maxSendQueueMessages` (the name of C's `lnr_set_max_send_queue`); give one of the two. */
  maxSendQueue?: number;
  /** Bytes the core reads from sockets before it delivers them and reads again. At most, and by default, 1 MiB. */
  maxReceiveQueueBytes?: number;
  /**
   * How long, in milliseconds, {@link Client.start} keeps trying a Redis that does not answer
   * (refuses connections, does not reply, or replies LOADING) before it rejects with `STORE`:
   * a service and its Redis start in any order (containers, systemd units). Default
   * 10,000 ms; 0 rejects at once. At most 3,600,000; more rejects `start()` with
   * `INVALID_ARGUMENT`. C and Python do not wait by default, as liner_broker does; here the
   * wait costs nothing, since `start()` is asynchronous and the event loop goes on meanwhile, and a
   * program that awaits `start()` is better served by a short wait than by a crash and restart.
   */
  waitForRedis?: number;
  /**
   * Bytes received but not yet handed to your handlers (and, per `messages()` iterator, not
   * yet consumed) before the client stops taking more; senders then feel TCP back-pressure.
   * Default 16 MiB.
   */
  maxInFlightBytes?: number;
  /**
   * Bytes of messages handed to handlers per event-loop turn before the client yields to other
   * work (timers, I/O) and continues on the next turn; each message counts 64 bytes more than
   * its size, so a flood of tiny messages yields too. Default 1 MiB.
   */
  deliveryBudgetBytes?: number;
  /**
   * Hand-over, on by default. At-least-once messages of {@link Client.sendTo} that wait (in
   * memory or in Redis) for a peer that has left their topic - its lease lapsed, it stopped,
   * it was scaled down; not one that unsubscribed - go to the topic's remaining peers about a
   * second after this client learns of the departure. With nobody left they wait for that
   * peer. Copies made by {@link Client.sendAll} are never handed over. A handed message may
   * arrive twice: at the departed peer too if it returns before the replica acknowledged it.
   * `false`: peer affinity - messages wait for the peer they were sent to, as in liner_broker.
   */
  handover?: boolean;
}

/**
 * What a client is made of, once its options are checked: the addon's options, and the two
 * settings only the JS side uses.
 *
 * @internal
 */
export interface ClientSettings {
  native: NativeOptions;
  /** `maxInFlightBytes`: the high-water mark of each `messages()` iterator too. */
  maxInFlightBytes: number;
  /** `deliveryBudgetBytes`. */
  deliveryBudgetBytes: number;
}

const DEFAULT_IN_FLIGHT = 16 * 1024 * 1024;
const DEFAULT_WAIT_FOR_REDIS_MS = 10000;
const DEFAULT_BUDGET = 1024 * 1024;

/**
 * Checks `options` one by one, always in the same order (the first wrong one is the one told),
 * and fills in the defaults.
 *
 * @throws LinerError `INVALID_ARGUMENT` when an option has the wrong type, form or range.
 * @internal
 */
export function settingsOf(options: ClientOptions): ClientSettings {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  const name = checkName('name', options.name);
  const topic = checkName('topic', options.topic);
  const store = storeOf(options);
  const inFlight = checkSize(options, 'maxInFlightBytes') || DEFAULT_IN_FLIGHT;
  const budget = checkSize(options, 'deliveryBudgetBytes') || DEFAULT_BUDGET;
  const advertise = checkString(options, 'advertise');
  const native: NativeOptions = {
    name,
    topic,
    listen: checkString(options, 'listen', '127.0.0.1:0')!,
    store,
    advertise,
    // 0 and absent alike: the process-wide value (the core reads 0 so).
    maxMessageSize: checkSize(options, 'maxMessageSize') || undefined,
    compressThreshold: checkSize(options, 'compressThreshold') || undefined,
    maxSendQueueBytes: checkSize(options, 'maxSendQueueBytes') || undefined,
    maxSendQueueMessages: sendQueueMessages(options) || undefined,
    maxReceiveQueueBytes: checkSize(options, 'maxReceiveQueueBytes') || undefined,
    maxInFlightBytes: inFlight,
    storeWaitMs: checkSize(options, 'waitForRedis') ?? DEFAULT_WAIT_FOR_REDIS_MS,
    handover: checkBoolean(options, 'handover'),
  };
  return { native, maxInFlightBytes: inFlight, deliveryBudgetBytes: budget };
}

/** What cannot be a size; the ranges of the limits are the core's (the addon checks them). */
function checkSize(options: ClientOptions, key: keyof ClientOptions): number | undefined {
  const value = options[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(`option ${key} must be a non-negative integer, not ${String(value)}`);
  }
  return value;
}

function checkString(options: ClientOptions, key: 'listen' | 'store' | 'redis' | 'advertise', fallback?: string): string | undefined {
  const value = options[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0) throw invalid(`option ${key} must be a non-empty string`);
  return value;
}

function checkBoolean(options: ClientOptions, key: 'handover'): boolean | undefined {
  const value = options[key];
  if (value !== undefined && typeof value !== 'boolean') throw invalid(`option ${key} must be a boolean, not ${describe(value)}`);
  return value;
}

/** `store`, or its alias `redis`; which schemes exist is the core's to say (the addon checks). */
function storeOf(options: ClientOptions): string {
  const store = checkString(options, 'store');
  const alias = checkString(options, 'redis');
  if (store !== undefined && alias !== undefined && store !== alias) {
    throw invalid(`options store and redis name the same thing: give one of the two, not '${redact(store)}' and '${redact(alias)}'`);
  }
  return store ?? alias ?? 'redis://127.0.0.1:6379/0';
}

function sendQueueMessages(options: ClientOptions): number | undefined {
  const messages = checkSize(options, 'maxSendQueueMessages');
  const alias = checkSize(options, 'maxSendQueue');
  if (messages !== undefined && alias !== undefined && messages !== alias) {
    throw invalid('options maxSendQueue and maxSendQueueMessages are the same limit: give one');
  }
  return messages ?? alias;
}
