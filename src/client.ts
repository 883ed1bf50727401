/**
 * The liner client: one peer of the mesh.
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events';

import { DrainGate } from './drain.js';
import { LinerError, codeOf, fromNative } from './errors.js';
import { type Message, MessageQueue } from './messages.js';
import { type NativeBatch, type NativeClient, type NativeEvent, type NativeStats, addon } from './native.js';
import { LinerStatusError, type StatusEvent, isErrorKind, statusEventNameOf, statusKindOf } from './status.js';
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
  /** `"redis://[user:pass@]host[:port][/db]"` or `"unix:///path/to/socket"`. Default `"redis://127.0.0.1:6379/0"`. */
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

/** Options of {@link Client.sendTo} and {@link Client.sendAll}. */
export interface SendOptions {
  /**
   * `true` (the default): kept until the receiver acknowledges it, stored in Redis while the
   * receiver is offline and delivered when it is back. `false`: best effort, dropped if the
   * receiver is down.
   */
  atLeastOnce?: boolean;
}

/** A payload: strings are sent as UTF-8; views are sent as their bytes (copied before the call returns). */
export type Payload = string | Uint8Array | ArrayBufferView | ArrayBuffer;

/** One address serving a topic, from {@link Client.listAddresses}. */
export interface TopicAddress {
  /** `"host:port"` the peer registered (its advertised address, or the one it is bound to). */
  address: string;
  /** The peer's unique name. */
  name: string;
}

/** One offline queue of this client, from {@link Client.pendingByPeer}. */
export interface PendingQueue {
  /** The listener's unique name. */
  name: string;
  /**
   * The listener's address as this client last used it (while this client runs, or if the
   * directory still lists it there), else `""`.
   */
  address: string;
  /** The topic this client sent to it under, `""` when `address` is. */
  topic: string;
  /** At-least-once messages stored in Redis for it, not yet delivered. */
  count: number;
}

/**
 * Counters of {@link Client.stats}. All are plain numbers (exact up to 2^53, about 9e15, far
 * beyond what a process reaches). The core's counters add up over every run of the client
 * (`start()` after `stop()`); the ones marked "now" are current depths, 0 while stopped.
 */
export interface ClientStats {
  /** Frames written to sockets (stored messages sent again included). */
  messagesSent: number;
  /** Bytes written to sockets: frames with their headers, after compression. */
  bytesSent: number;
  /** Messages the core handed over for delivery, after deduplication. */
  messagesDelivered: number;
  /** Payload bytes of those, after decompression. */
  bytesDelivered: number;
  /** Duplicates dropped (at-least-once messages sent again after a reconnect). */
  duplicates: number;
  /** At-least-once messages stored in Redis because their peer was unreachable or this client stopped. */
  persisted: number;
  /** Stored messages read back from Redis to be sent. */
  reloaded: number;
  /**
   * Messages dropped: best-effort ones whose peer was unreachable, and any sent to a topic that
   * turned out to have nobody serving it when the send's look-up read it (each reported by an
   * `'error'` event, code `SEND`).
   */
  dropped: number;
  /** Connections to peers that broke and were opened again (or are being retried). */
  reconnects: number;
  /** Now: messages queued or awaiting acknowledgement, all peers (and those waiting for a look-up). */
  sendQueueMessages: number;
  /** Now: bytes queued or awaiting acknowledgement, all peers. */
  sendQueueBytes: number;
  /** Now: bytes read from sockets, not yet delivered. */
  receiveQueueBytes: number;
  /** Messages that reached the JS side of the client. */
  jsMessages: number;
  /** Their payload bytes. */
  jsBytes: number;
  /** Batches taken by the JS thread (each carries many messages under load). */
  jsBatches: number;
  /** Cross-thread wake-ups of the JS thread. */
  jsWakeups: number;
  /** Times the delivery thread waited because `maxInFlightBytes` were waiting for JS. */
  jsBlocked: number;
  /** Messages dropped because the JS side was gone (the client was garbage-collected or its thread ended). */
  jsDropped: number;
  /** Status events dropped because more than 4096 were waiting for the JS thread. */
  jsEventsDropped: number;
  /** Now: bytes waiting for the JS thread. */
  jsPendingBytes: number;
  /** The highest `jsPendingBytes` so far. */
  jsMaxPendingBytes: number;
}

/**
 * Events of {@link Client}. Every status event comes as `status` (with its kind) and under its
 * own name; see {@link StatusEvent} for the fields.
 */
export interface ClientEvents {
  /** A message arrived (see {@link Message}). Handlers run on the JS thread, in order. */
  message: [message: Message];
  /** Any status event (see {@link StatusKind}). */
  status: [event: StatusEvent];
  /**
   * A peer joined a topic this client uses, or a connection between this client and a peer
   * opened (this client's sender connected to it: `peer` is its address; its sender connected
   * to this client: `topic` is its topic, `peer` is `""`).
   */
  'peer-connected': [event: StatusEvent];
  /** A peer left a topic this client uses (it stopped or closed), or a connection with it ended (it stopped, closed, crashed or was killed). */
  'peer-disconnected': [event: StatusEvent];
  /** A peer subscribed to a topic this client uses. */
  subscribed: [event: StatusEvent];
  /** A peer unsubscribed from a topic this client uses. */
  unsubscribed: [event: StatusEvent];
  /** A connection to a peer failed or closed with messages in flight; at-least-once messages are sent again or stored. */
  'route-lost': [event: StatusEvent];
  /** A peer's send queue is full: sends to it throw `BUSY` until `writable`. */
  busy: [event: StatusEvent];
  /** That queue has room again ({@link Client.drain} resolves). */
  writable: [event: StatusEvent];
  /**
   * Redis answers the sender or the listener again, after an outage that was told once, as an
   * `error` (`code` `STORE`) when that side's connection was lost.
   */
  'store-recovered': [event: StatusEvent];
  /**
   * Either a failure the client reports on its own, as a {@link LinerStatusError} (`code`
   * `STORE`: Redis failed under the sender or the listener; `SEND`: a write to a peer failed),
   * emitted only while someone listens for `error` (it is on `status` either way); or what a
   * `message` or status handler threw, which, without an `error` listener, is rethrown
   * (uncaught).
   */
  error: [error: unknown];
  /** The client is closed; every message it accepted was handed to its handlers. */
  close: [];
}

type State = 'idle' | 'starting' | 'running' | 'stopping' | 'closing' | 'closed';

const DEFAULT_IN_FLIGHT = 16 * 1024 * 1024;
const DEFAULT_WAIT_FOR_REDIS_MS = 10000;
const DEFAULT_BUDGET = 1024 * 1024;
const PER_MESSAGE_BUDGET = 64; // what a message costs the delivery budget on top of its bytes

const NO_CORE_STATS = {
  messagesSent: 0,
  bytesSent: 0,
  messagesDelivered: 0,
  bytesDelivered: 0,
  duplicates: 0,
  persisted: 0,
  reloaded: 0,
  dropped: 0,
  reconnects: 0,
  sendQueueMessages: 0,
  sendQueueBytes: 0,
  receiveQueueBytes: 0,
};
type CoreStats = typeof NO_CORE_STATS;

function invalid(reason: string): LinerError {
  return new LinerError('INVALID_ARGUMENT', reason);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}

// Names become parts of Redis keys ("lnr_topic:{topic}:addr"): ':' and '\' would break the
// key layout liner_broker peers read (README, "Compatibility").
// A NUL would end the name early in C, and a lone surrogate cannot be encoded as UTF-8 (it
// would silently become U+FFFD): both are refused, as in the C and Python bindings.
function checkText(what: string, value: string): void {
  if (value.includes('\0')) throw invalid(`${what} must not contain a NUL character`);
  if (/\p{Cs}/u.test(value)) throw invalid(`${what} must be valid Unicode text (it has a lone surrogate)`);
}

function checkName(what: string, value: unknown): string {
  if (typeof value !== 'string') throw invalid(`${what} must be a string, not ${describe(value)}`);
  if (value.length === 0) throw invalid(`${what} must not be empty`);
  if (/[:\\]/.test(value)) throw invalid(`${what} '${value}' must not contain ':' or '\\'`);
  checkText(what, value);
  return value;
}

function checkTopic(topic: unknown): string {
  if (typeof topic !== 'string' || topic === '') throw invalid(`topic must be a non-empty string, not ${describe(topic)}`);
  checkText('topic', topic);
  return topic;
}

function checkSize(options: ClientOptions, key: keyof ClientOptions, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const value = options[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw invalid(`option ${key} must be an integer from 0 to ${max}, not ${String(value)}`);
  }
  return value;
}

function checkString(options: ClientOptions, key: 'listen' | 'redis' | 'advertise', fallback?: string): string | undefined {
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

function sendQueueMessages(options: ClientOptions): number | undefined {
  const messages = checkSize(options, 'maxSendQueueMessages');
  const alias = checkSize(options, 'maxSendQueue');
  if (messages !== undefined && alias !== undefined && messages !== alias) {
    throw invalid('options maxSendQueue and maxSendQueueMessages are the same limit: give one');
  }
  return messages ?? alias;
}

function toPayload(data: unknown): string | Uint8Array {
  if (typeof data === 'string' || data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw invalid(`data must be a string, Buffer, Uint8Array or ArrayBuffer, not ${describe(data)}`);
}

function coreStatsOf(s: NativeStats): CoreStats | undefined {
  if (s.messagesSent === undefined) return undefined;
  const out = { ...NO_CORE_STATS };
  for (const key of Object.keys(out) as (keyof CoreStats)[]) out[key] = s[key] ?? 0;
  return out;
}

/**
 * One liner peer: it listens on its own TCP port, registers its topic in Redis, and exchanges
 * messages with other peers directly over TCP.
 *
 * @example
 * ```ts
 * import { Client } from 'liner';
 *
 * await using worker = new Client({ name: 'worker-1', topic: 'jobs', redis: 'redis://127.0.0.1:6379/0' });
 * worker.on('message', ({ from, data }) => console.log(`${from}: ${data}`));
 * worker.on('peer-disconnected', ({ topic, peer }) => console.log(`${peer} left ${topic}`));
 * await worker.start();
 * worker.sendTo('results', 'hello');
 * ```
 *
 * Life cycle: new → {@link Client.start} → running → {@link Client.stop} → stopped →
 * `start()` again … → {@link Client.close} → closed. A stopped client keeps its name, topic,
 * subscriptions and channels (a later `start()` resumes them; what was sent to it meanwhile
 * waits in Redis); a closed client cannot be started again, but a new client with the same
 * name resumes its channels.
 *
 * Threads: everything a user calls runs on the JS thread, and every handler is called on it;
 * the work behind (sockets, Redis, the delivery of messages) runs on the client's own native
 * threads. Calls that talk to Redis return Promises and do not block the event loop (the first
 * {@link Client.sendTo} to a topic is the exception: see there).
 */
export class Client extends EventEmitter<ClientEvents> implements AsyncDisposable {
  /** The client's unique name. */
  readonly name: string;
  /** The client's own topic. */
  readonly topic: string;

  readonly #native: NativeClient;
  readonly #budget: number;
  readonly #highWater: number;
  readonly #gate = new DrainGate();
  #state: State = 'idle';
  #running = false; // the core runs (started and not yet stopped)
  #opened: Promise<void> | undefined;
  #started: Promise<void> | undefined; // the start in flight, or the one that made it run
  #stopped: Promise<void> | undefined; // the stop in flight
  #closed: Promise<void> | undefined;
  #boundAddress = '';
  #publishedAddress = '';
  #advertise: string;
  #coreStats: CoreStats = NO_CORE_STATS; // as last read (run/stop in flight: not readable)
  #names: string[] = [];
  #iterators = new Set<MessageQueue>();
  #draining = false;

  /**
   * Validates the options; nothing touches the network until {@link Client.start} (or a call
   * that needs Redis, such as {@link Client.subscribe}).
   *
   * @throws LinerError `INVALID_ARGUMENT` when an option has the wrong type, form or range.
   */
  constructor(options: ClientOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
    this.name = checkName('name', options.name);
    this.topic = checkName('topic', options.topic);
    const redis = checkString(options, 'redis', 'redis://127.0.0.1:6379/0')!;
    if (!/^(redis|unix|redis\+unix):\/\//.test(redis)) {
      throw invalid(`redis URL '${redact(redis)}' must start with redis://, unix:// or redis+unix://`);
    }
    const inFlight = checkSize(options, 'maxInFlightBytes') || DEFAULT_IN_FLIGHT;
    this.#highWater = inFlight;
    this.#budget = checkSize(options, 'deliveryBudgetBytes') || DEFAULT_BUDGET;
    this.#advertise = checkString(options, 'advertise') ?? '';
    try {
      this.#native = new addon.NativeClient({
        name: this.name,
        topic: this.topic,
        listen: checkString(options, 'listen', '127.0.0.1:0')!,
        redis,
        advertise: this.#advertise || undefined,
        // 0 and absent alike: the process-wide value (the core reads 0 so).
        maxMessageSize: checkSize(options, 'maxMessageSize', addon.maxMessageSizeCeiling) || undefined,
        compressThreshold: checkSize(options, 'compressThreshold') || undefined,
        maxSendQueueBytes: checkSize(options, 'maxSendQueueBytes') || undefined,
        maxSendQueueMessages: sendQueueMessages(options) || undefined,
        maxReceiveQueueBytes: checkSize(options, 'maxReceiveQueueBytes') || undefined,
        maxInFlightBytes: inFlight,
        storeWaitMs: checkSize(options, 'waitForRedis') ?? DEFAULT_WAIT_FOR_REDIS_MS,
        handover: checkBoolean(options, 'handover'),
      });
    } catch (e) {
      throw fromNative(e);
    }
    // Messages wait in the core while nobody listens: a listener added later gets them.
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'message') queueMicrotask(() => this.#kick());
    });
  }

  /**
   * The address the client is bound to (`"127.0.0.1:40123"`), once started: with port 0 in
   * `listen`, the port it got. `""` before the first start; after {@link Client.stop}, the
   * address of the last run.
   */
  get boundAddress(): string {
    return this.#boundAddress;
  }

  /** Same as {@link Client.boundAddress}. */
  get address(): string {
    return this.#boundAddress;
  }

  /**
   * The address registered in Redis, where peers reach this client: the advertise address
   * (port 0 replaced by the bound port) if set, else the bound address. `""` while not running.
   */
  get publishedAddress(): string {
    return this.#publishedAddress;
  }

  /** The advertise address as configured (`advertise` option or {@link Client.setAdvertiseAddress}), `""` if none. */
  get advertiseAddress(): string {
    return this.#advertise;
  }

  /** True between a successful {@link Client.start} and the next {@link Client.stop} or {@link Client.close}. */
  get isRunning(): boolean {
    return this.#state === 'running';
  }

  /** Same as {@link Client.isRunning}. */
  get running(): boolean {
    return this.isRunning;
  }

  /** True once {@link Client.close} was called. */
  get closed(): boolean {
    return this.#state === 'closing' || this.#state === 'closed';
  }

  /**
   * Sets the address to register instead of the bound one, from the next {@link Client.start}
   * on (see the `advertise` option); `""` registers the bound address again.
   *
   * @throws LinerError `ALREADY_RUNNING` while the client starts, runs or stops (call it
   *   before `start()` or after `stop()`), `INVALID_ARGUMENT` when it is not a literal
   *   `"ip:port"` / `"[v6]:port"`, `CLOSED`.
   */
  setAdvertiseAddress(address: string): void {
    if (this.closed) throw new LinerError('CLOSED', 'cannot set the advertise address of a closed client');
    if (typeof address !== 'string') throw invalid(`advertise address must be a string, not ${describe(address)}`);
    if (this.#state !== 'idle') {
      throw new LinerError('ALREADY_RUNNING', `cannot set the advertise address while the client is ${this.#state}`);
    }
    try {
      this.#native.setAdvertise(address);
    } catch (e) {
      throw fromNative(e);
    }
    this.#advertise = address;
  }

  /**
   * Starts the client: binds its listen address, registers it under its topic and
   * subscriptions, and reconnects to the peers it has pending messages for. Calling it again
   * while it starts or runs returns the same Promise; called while it stops, it starts again
   * once stopped.
   *
   * A running client keeps the process alive, like a server, until {@link Client.stop} or
   * {@link Client.close} (or {@link Client.unref}).
   *
   * @throws LinerError `STORE` (Redis), `BIND` (listen address), `INVALID_ARGUMENT` (address or
   *   URL form), `STARTUP`, `CLOSED`. A failed start leaves nothing registered and may be retried.
   */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new LinerError('CLOSED', 'cannot start a closed client'));
    if (!this.#started) {
      const started = this.#start(this.#stopped);
      this.#started = started;
      started.catch(() => {
        if (this.#started === started) this.#started = undefined;
      });
    }
    return this.#started;
  }

  async #start(stopping: Promise<void> | undefined): Promise<void> {
    if (stopping) await stopping.catch(() => undefined);
    if (this.closed) throw new LinerError('CLOSED', 'the client was closed while it started');
    this.#state = 'starting';
    try {
      await this.#open();
      const [bound, published] = await this.#native.run(this.#onWake);
      this.#running = true;
      this.#boundAddress = bound;
      this.#publishedAddress = published;
      if (this.#state === 'starting') this.#state = 'running';
    } catch (e) {
      if (this.#state === 'starting') this.#state = 'idle';
      throw fromNative(e);
    }
  }

  #open(): Promise<void> {
    return (this.#opened ??= this.#native.open().catch((e: unknown) => {
      this.#opened = undefined;
      throw fromNative(e);
    }));
  }

  /**
   * Stops the client without releasing it: removes its address from Redis, sends what is
   * queued (waiting up to about 2 s), stores unacknowledged at-least-once messages in Redis,
   * writes the acknowledgements of what it received, and hands what it received to your
   * handlers (with nobody listening, that waits for a listener as usual). Then the client is
   * as before its first start, with its counters, subscriptions and channels: `start()` runs
   * it again, and what peers sent meanwhile (at-least-once) is delivered then, once.
   *
   * `messages()` iterators stay open. A stopped client no longer keeps the process alive; call
   * {@link Client.close} to release it.
   *
   * Idempotent: while it stops, every call returns the same Promise; on a client that is not
   * running it resolves at once; called while it starts, it stops once started; on a closed
   * client it resolves when the close is done.
   */
  stop(): Promise<void> {
    if (this.#closed) return this.#closed;
    const started = this.#started;
    if (!started) return this.#stopped ?? Promise.resolve();
    this.#started = undefined; // a start() from now on runs again, after this stop
    if (this.#state === 'running') {
      this.#readCoreStats();
      this.#state = 'stopping'; // sends are refused from now on
    }
    const stopped = this.#stop(started);
    this.#stopped = stopped;
    stopped.then(
      () => this.#stopDone(stopped),
      () => this.#stopDone(stopped),
    );
    return stopped;
  }

  #stopDone(stopped: Promise<void>): void {
    if (this.#stopped === stopped) this.#stopped = undefined;
  }

  async #stop(started: Promise<void>): Promise<void> {
    try {
      await started;
    } catch {
      return; // it did not start: nothing to stop
    }
    if (this.#state === 'running') {
      this.#readCoreStats();
      this.#state = 'stopping';
    } else if (this.#state !== 'stopping') {
      return; // close() took over
    }
    try {
      await this.#native.stop();
    } catch (e) {
      throw fromNative(e);
    } finally {
      this.#running = false;
      this.#publishedAddress = '';
      if (this.#state === 'stopping') this.#state = 'idle';
      this.#readCoreStats();
      this.#gate.writable(); // its queues are gone: nobody waits for room in them
      // What the core delivered while stopping is acknowledged already: hand it over.
      this.#onWake();
    }
  }

  /**
   * Stops and releases the client: everything {@link Client.stop} does, then `messages()`
   * iterators end and `close` is emitted. Every message the client acknowledged is handed to
   * your handlers before it resolves, listening or not.
   *
   * Idempotent (every call returns the same Promise) and safe from inside a message handler.
   */
  close(): Promise<void> {
    return (this.#closed ??= this.#close());
  }

  async #close(): Promise<void> {
    const starting = this.#started;
    const stopping = this.#stopped;
    if (this.#state === 'running') this.#readCoreStats();
    this.#state = 'closing';
    try {
      if (starting) await starting.catch(() => undefined);
      if (stopping) await stopping.catch(() => undefined);
      if (this.#running) await this.#native.stop();
      else if (this.#opened) await this.#opened.catch(() => undefined);
    } finally {
      this.#running = false;
      this.#publishedAddress = '';
      this.#readCoreStats();
      // What the core delivered while stopping is acknowledged already: hand it over.
      this.#deliverRest();
      this.#native.dispose();
      this.#state = 'closed';
      for (const queue of this.#iterators) queue.end();
      this.#iterators.clear();
      this.#gate.close(new LinerError('CLOSED', 'the client was closed'));
      this.emit('close');
    }
  }

  /** Same as {@link Client.close}, for `await using client = new Client(…)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }


  /**
   * Sends one message to ONE peer serving `topic` (round-robin over its replicas, skipping
   * those that are unreachable right now). Synchronous: the message is copied and queued; it
   * leaves on the client's own thread.
   *
   * Never waits on Redis. A send to a topic this client has not read yet (not sent to, not
   * refreshed) returns at once: the message waits while the client reads the topic's peers and
   * opens the channel on its own thread, then leaves in order behind any sent before it to that
   * topic. If nobody serves the topic, the message is dropped and reported by an `'error'` event
   * (`LinerStatusError`, code `SEND`, naming the topic; `stats().dropped` counts it), and from
   * then on sends to that topic throw `NO_ADDRESS` at once, for as long as that stays so.
   * `await refreshAddressTopic(topic)` reads a topic ahead, so that even its first send knows.
   * Messages waiting for Redis are held to the peer's message cap and 4 times its byte cap
   * (they wait uncompressed); `BUSY` beyond them.
   *
   * @throws LinerError `BUSY` (the peer's queue is full: the message was NOT queued; `await
   *   drain()` and send again), `NO_ADDRESS`, `SELF_TOPIC`, `INTERNAL_TOPIC`, `INVALID_ARGUMENT`
   *   (wrong type, empty or oversize payload), `STORE`, `NOT_RUNNING`, `CLOSED`.
   */
  sendTo(topic: string, data: Payload, options?: SendOptions): void {
    this.#send(false, topic, data, options);
  }

  /**
   * Sends one copy of the message to EVERY peer serving `topic` (its owners and its
   * subscribers). Same rules and errors as {@link Client.sendTo}; when one copy is refused
   * the error is thrown after the others were queued: a slow peer (`BUSY`) never holds the
   * others up. Retrying is safe: the next `sendAll` with the same topic, bytes and
   * `atLeastOnce` sends only the refused copies (no peer gets a second one); any other
   * `sendAll` ends the retry, after which the same bytes count as a new message.
   */
  sendAll(topic: string, data: Payload, options?: SendOptions): void {
    this.#send(true, topic, data, options);
  }

  /**
   * Sends `messages`, in order, to ONE peer serving `topic`: a batch costs one call into the
   * core, one route look-up and one queue lock, where {@link Client.sendTo} pays those per
   * message. Round-robin over the topic's replicas picks the peer once per call, so a batch
   * never interleaves with itself across replicas and arrives in order.
   *
   * Every message is checked before any is queued: an empty, oversize or wrongly typed one
   * throws `INVALID_ARGUMENT` (naming its index) and nothing is sent. When the peer's queue
   * fills up part-way, the call does NOT throw `BUSY`: it returns how many of the messages
   * (from the start) were queued; `await drain()` and send the rest.
   *
   * @returns how many messages were queued: `messages.length`, or fewer when the peer's queue
   *   filled up.
   * @throws LinerError `NO_ADDRESS`, `SELF_TOPIC`, `INTERNAL_TOPIC`, `INVALID_ARGUMENT`,
   *   `STORE`, `NOT_RUNNING`, `CLOSED`: nothing was queued.
   *
   * @example
   * ```ts
   * for (let sent = 0; sent < jobs.length; ) {
   *   sent += client.sendToMany('workers', sent === 0 ? jobs : jobs.slice(sent));
   *   if (sent < jobs.length) await client.drain();
   * }
   * ```
   */
  sendToMany(topic: string, messages: readonly Payload[], options?: SendOptions): number {
    if (this.#state !== 'running') throw this.#notRunning('sendToMany');
    if (!Array.isArray(messages)) throw invalid(`messages must be an array, not ${describe(messages)}`);
    const topicArg = this.#topicArg(topic);
    if (messages.length === 0) return 0;
    let n: number;
    try {
      n = this.#native.sendToMany(topicArg, messages, options?.atLeastOnce !== false);
    } catch (e) {
      throw fromNative(e); // a message of the wrong type: INVALID_ARGUMENT, nothing queued
    }
    this.#nativeTopic = topic;
    if (n < 0) throw new LinerError(codeOf(-n), this.#native.lastError());
    if (n < messages.length) this.#gate.busy();
    return n;
  }

  // The topic the native side holds from the previous send (checked then), or undefined.
  #nativeTopic: string | undefined;

  // What a send passes as its topic: null for the one the native side already holds, so that a
  // stream to one topic checks and converts it once, not on every send.
  #topicArg(topic: string): string | null {
    if (typeof topic !== 'string') throw invalid(`topic must be a string, not ${describe(topic)}`);
    if (topic === this.#nativeTopic) return null;
    checkText('topic', topic);
    this.#nativeTopic = undefined; // until the native side has it, even if a step below throws
    return topic;
  }

  #send(all: boolean, topic: string, data: Payload, options: SendOptions | undefined): void {
    if (this.#state !== 'running') throw this.#notRunning(all ? 'sendAll' : 'sendTo');
    const topicArg = this.#topicArg(topic);
    const payload = toPayload(data);
    const atLeastOnce = options?.atLeastOnce !== false;
    const rc = all
      ? this.#native.sendAll(topicArg, payload, atLeastOnce)
      : this.#native.sendTo(topicArg, payload, atLeastOnce);
    this.#nativeTopic = topic;
    if (rc !== 0) {
      const error = new LinerError(codeOf(rc), this.#native.lastError());
      if (error.code === 'BUSY') this.#gate.busy();
      throw error;
    }
  }

  /**
   * Resolves when there is room to send again after a send threw `BUSY` (at once if none did).
   * It follows the core's `writable` status event, and resolves after at most 250 ms anyway:
   * a send after it may still be refused, then wait again.
   *
   * @example
   * ```ts
   * for (const job of jobs) {
   *   for (;;) {
   *     try { client.sendTo('workers', job); break; }
   *     catch (e) { if ((e as LinerError).code !== 'BUSY') throw e; await client.drain(); }
   *   }
   * }
   * ```
   * @throws LinerError `CLOSED` when the client is (or gets) closed.
   */
  drain(): Promise<void> {
    return this.#gate.wait();
  }

  /**
   * Adds `topic` to the topics this client receives (`to` is then that topic). Allowed before
   * and after {@link Client.start}; before, it takes effect when the client starts.
   *
   * @throws LinerError `SELF_TOPIC`, `INTERNAL_TOPIC`, `INVALID_ARGUMENT`, `STORE`, `CLOSED`.
   */
  async subscribe(topic: string): Promise<void> {
    checkName('topic', topic);
    await this.#call('subscribe', () => this.#native.subscribe(topic));
  }

  /**
   * Undoes {@link Client.subscribe}, and marks this client as unsubscribed so that senders stop
   * keeping at-least-once messages for it (a client that stops is still waited for). Running
   * senders learn of it within a fraction of a second, at once after their
   * {@link Client.refreshAddressTopic}; then sends to a topic nobody else serves throw `NO_ADDRESS`.
   */
  async unsubscribe(topic: string): Promise<void> {
    checkName('topic', topic);
    await this.#call('unsubscribe', () => this.#native.unsubscribe(topic));
  }

  /**
   * Re-reads the addresses of `topic` from Redis (liner keeps them current by itself; this
   * forces it). Resolves to whether at least one peer serves it.
   */
  async refreshAddressTopic(topic: string): Promise<boolean> {
    checkTopic(topic);
    try {
      await this.#call('refreshAddressTopic', () => this.#native.refresh(topic));
      return true;
    } catch (e) {
      if (e instanceof LinerError && e.code === 'NO_ADDRESS') return false;
      throw e;
    }
  }

  /**
   * The peers serving `topic` now (its owners and its subscribers), as registered in Redis;
   * `[]` when nobody does. Works whether the client runs or not (it only needs Redis); from
   * then on, while running, the client reports that topic's peers on its status events.
   *
   * @example
   * ```ts
   * for (const { address, name } of await client.listAddresses('jobs')) console.log(name, address);
   * ```
   * @throws LinerError `INVALID_ARGUMENT` (not a non-empty string), `STORE`, `CLOSED`.
   */
  async listAddresses(topic: string): Promise<TopicAddress[]> {
    checkTopic(topic);
    const rows = await this.#call('listAddresses', () => this.#native.listAddresses(topic));
    return rows.map(([address, name]) => ({ address, name }));
  }

  /**
   * How many at-least-once messages of this client wait in Redis for listeners that were
   * unreachable (the total of {@link Client.pendingByPeer}). Messages still in memory (queued,
   * or sent and not yet acknowledged) are not counted: see `stats().sendQueueMessages`. Works
   * whether the client runs or not.
   *
   * @throws LinerError `STORE`, `CLOSED`.
   */
  async pendingCount(): Promise<number> {
    let total = 0;
    for (const queue of await this.pendingByPeer()) total += queue.count;
    return total;
  }

  /**
   * This client's offline queues in Redis, one per listener it has sent at-least-once messages
   * to (empty queues included), as {@link PendingQueue}s.
   *
   * @example
   * ```ts
   * for (const q of await client.pendingByPeer()) if (q.count) console.log(`${q.count} waiting for ${q.name}`);
   * ```
   * @throws LinerError `STORE`, `CLOSED`.
   */
  async pendingByPeer(): Promise<PendingQueue[]> {
    const rows = await this.#call('pendingByPeer', () => this.#native.pendingByPeer());
    return rows.map(([address, topic, name, count]) => ({ name, address, topic, count }));
  }

  /**
   * Deletes the offline queues and acknowledgement counters of every channel this client
   * sends on, and its sender→listener map. Only while not running.
   *
   * @throws LinerError `CLEAR_WHILE_RUNNING`, `STORE`, `CLOSED`.
   */
  async clearStoredMessages(): Promise<void> {
    await this.#call('clearStoredMessages', () => this.#native.clearStoredMessages());
  }

  /**
   * Deletes the whole address directory of this client's topic (other replicas too). Only
   * while not running.
   *
   * @throws LinerError `CLEAR_WHILE_RUNNING`, `STORE`, `CLOSED`.
   */
  async clearAddressesOfTopic(): Promise<void> {
    await this.#call('clearAddressesOfTopic', () => this.#native.clearAddressesOfTopic());
  }

  async #call<T>(what: string, call: () => Promise<T>): Promise<T> {
    if (this.closed) throw new LinerError('CLOSED', `cannot ${what} on a closed client`);
    await this.#open();
    try {
      return await call();
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * The received messages as an async iterator, from now until the client closes (then it
   * ends after the last message). Each iterator sees every message; a consumer that falls
   * behind by more than `maxInFlightBytes` makes the client stop taking messages until it
   * catches up. Leaving the loop early (`break`) detaches the iterator.
   *
   * @example
   * ```ts
   * for await (const { from, data } of client.messages()) console.log(from, data.toString());
   * ```
   */
  messages(): AsyncIterableIterator<Message> {
    const queue = new MessageQueue(this.#highWater, () => this.#kick(), (q) => this.#iterators.delete(q));
    if (this.#state === 'closed') {
      queue.end();
    } else {
      this.#iterators.add(queue);
      queueMicrotask(() => this.#kick());
    }
    return queue;
  }

  /** Same as {@link Client.messages}. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return this.messages();
  }

  /**
   * Counters of the client (see {@link ClientStats}): synchronous and cheap. Before the first
   * start the core's counters are 0; while the client starts or stops they are those of the
   * moment it began to; after {@link Client.close}, the final ones.
   */
  stats(): ClientStats {
    if (this.#state === 'running' || this.#state === 'idle') this.#readCoreStats();
    return { ...this.#native.stats(false), ...this.#coreStats }; // without the core's: only the JS side's
  }

  // Only while no run or stop is in flight: reading the core's counters waits for them.
  #readCoreStats(): void {
    if (this.#state === 'closed') return;
    const core = coreStatsOf(this.#native.stats(true));
    if (core) this.#coreStats = core;
  }

  /** Lets the process exit while this client runs (as `server.unref()`). */
  unref(): this {
    this.#native.unref();
    return this;
  }

  /** Undoes {@link Client.unref}: the running client keeps the process alive again. */
  ref(): this {
    this.#native.ref();
    return this;
  }

  #notRunning(what: string): LinerError {
    if (this.closed) return new LinerError('CLOSED', `cannot ${what} on a closed client`);
    const now = this.#state === 'idle' ? 'not started (or was stopped)' : this.#state;
    return new LinerError('NOT_RUNNING', `cannot ${what}: the client is ${now}`);
  }

  // ---- delivery into JS -------------------------------------------------------------------

  // Called (through the native thread-safe function) when messages or events wait and the JS
  // side was idle.
  readonly #onWake = (): void => {
    const events = this.#native.takeEvents();
    if (events) this.#dispatchEvents(events);
    this.#kick();
  };

  #kick(): void {
    if (!this.#draining && this.#state !== 'closed') this.#drain();
  }

  // Takes batches until none waits, nobody listens, an iterator is full, or this turn's budget
  // is spent (then continues on the next turn, after I/O and timers had their go).
  readonly #drain = (): void => {
    this.#draining = true;
    let budget = this.#budget;
    for (;;) {
      if (this.#state === 'closed' || !this.#accepting()) break;
      const batch = this.#native.take();
      if (batch === undefined) break;
      budget -= this.#dispatch(batch);
      if (budget <= 0) {
        setImmediate(this.#drain);
        return;
      }
    }
    this.#draining = false;
  };

  #accepting(): boolean {
    if (this.#iterators.size === 0) return this.listenerCount('message') > 0;
    for (const queue of this.#iterators) if (queue.full) return false;
    return true;
  }

  // Everything still waiting, whoever listens (the client is closing).
  #deliverRest(): void {
    const events = this.#native.takeEvents();
    if (events) this.#dispatchEvents(events);
    for (let batch = this.#native.take(); batch !== undefined; batch = this.#native.take()) this.#dispatch(batch);
  }

  #dispatch([buffer, meta, newNames]: NativeBatch): number {
    if (newNames) for (const name of newNames) this.#names.push(name);
    const names = this.#names;
    const queues = this.#iterators.size > 0 ? [...this.#iterators] : undefined;
    for (let i = 0; i < meta.length; i += 4) {
      const offset = meta[i]!;
      const message: Message = {
        to: names[meta[i + 2]!]!,
        from: names[meta[i + 3]!]!,
        data: buffer.subarray(offset, offset + meta[i + 1]!),
      };
      if (queues) for (const queue of queues) queue.push(message);
      try {
        this.emit('message', message);
      } catch (e) {
        this.#handlerFailed(e);
      }
    }
    return buffer.length + (meta.length / 4) * PER_MESSAGE_BUDGET;
  }

  #dispatchEvents(events: NativeEvent[]): void {
    for (const [n, topic, peer, message] of events) {
      const kind = statusKindOf(n);
      if (kind === undefined) continue;
      if (kind === 'writable') this.#gate.writable();
      else if (kind === 'busy') this.#gate.busy();
      const event: StatusEvent = { kind, topic, peer, message };
      try {
        this.emit('status', event);
      } catch (e) {
        this.#handlerFailed(e);
      }
      try {
        const name = statusEventNameOf(kind);
        if (name) this.emit(name, { ...event });
        // Only to listeners: a Redis hiccup must not crash a program that did not ask.
        else if (isErrorKind(kind) && this.listenerCount('error') > 0) this.emit('error', new LinerStatusError(event));
      } catch (e) {
        this.#handlerFailed(e);
      }
    }
  }

  #handlerFailed(error: unknown): void {
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', error);
        return;
      } catch (e) {
        error = e;
      }
    }
    // As an exception thrown by any event handler: uncaught, but only after this batch was
    // delivered (the core has acknowledged it already).
    process.nextTick(() => {
      throw error;
    });
  }
}

/** Version of the native addon (the package version). */
export const version: string = addon.version;
