/**
 * The liner client: one peer of the mesh.
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events';

import { DrainGate } from './drain.js';
import { LinerError, codeOf, fromNative } from './errors.js';
import { type Message, MessageQueue } from './messages.js';
import { type NativeBatch, type NativeClient, type NativeEvent, addon } from './native.js';
import { type StatusEvent, statusKindOf } from './status.js';

/** Options of {@link Client}. Sizes are in bytes; 0 or absent means the default. */
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
  /** Address to register instead of the bound one (e.g. when listening on 0.0.0.0): a literal `"ip:port"`; port 0 stands for the bound port. */
  advertise?: string;
  /** Largest payload sent or accepted. Default: the process-wide limit (1 GiB minus the frame header). */
  maxMessageSize?: number;
  /** Payloads above this size are zstd-compressed on the wire. Default 1 MiB. */
  compressThreshold?: number;
  /** Per peer: bytes queued or awaiting acknowledgement before sends to it throw `BUSY`. Default 64 MiB. */
  maxSendQueueBytes?: number;
  /** Per peer: messages queued or awaiting acknowledgement before sends to it throw `BUSY`. Default: no count limit. */
  maxSendQueueMessages?: number;
  /** Bytes read from sockets and not yet delivered before the client stops reading. Default 64 MiB. */
  maxReceiveQueueBytes?: number;
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
  /** `"host:port"` the peer listens on. */
  address: string;
  /** The peer's unique name. */
  name: string;
}

/** Counters of {@link Client.stats}. Core counters are absent while the client is not running. */
export interface ClientStats {
  /** Frames written to sockets. */
  messagesSent?: number;
  bytesSent?: number;
  /** Messages the core handed over for delivery (deduplicated). */
  messagesDelivered?: number;
  bytesDelivered?: number;
  /** Duplicates dropped (at-least-once resends). */
  duplicates?: number;
  /** Messages stored in Redis for offline peers. */
  persisted?: number;
  /** Messages read back from Redis. */
  reloaded?: number;
  /** Best-effort messages dropped because their peer was down. */
  dropped?: number;
  reconnects?: number;
  /** Now: messages and bytes queued or awaiting acknowledgement, all peers. */
  sendQueueMessages?: number;
  sendQueueBytes?: number;
  /** Now: bytes read from sockets, not yet delivered. */
  receiveQueueBytes?: number;
  /** Messages and bytes that reached the JS side of the client. */
  jsMessages: number;
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
  /** Now, and the highest so far: bytes waiting for the JS thread. */
  jsPendingBytes: number;
  jsMaxPendingBytes: number;
}

/** Events of {@link Client}. */
export interface ClientEvents {
  /** A message arrived (see {@link Message}). Handlers run on the JS thread, in order. */
  message: [message: Message];
  /** Something happened to a peer or a connection (see {@link StatusEvent}). */
  status: [event: StatusEvent];
  /** A `message` or `status` handler threw. Without an `error` listener, the exception is rethrown (uncaught). */
  error: [error: unknown];
  /** The client is closed; every message it accepted was handed to its handlers. */
  close: [];
}

type State = 'new' | 'starting' | 'running' | 'closing' | 'closed';

const DEFAULT_IN_FLIGHT = 16 * 1024 * 1024;
const DEFAULT_BUDGET = 1024 * 1024;
const PER_MESSAGE_BUDGET = 64; // what a message costs the delivery budget on top of its bytes

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
function checkName(what: string, value: unknown): string {
  if (typeof value !== 'string') throw invalid(`${what} must be a string, not ${describe(value)}`);
  if (value.length === 0) throw invalid(`${what} must not be empty`);
  if (/[:\\]/.test(value)) throw invalid(`${what} '${value}' must not contain ':' or '\\'`);
  return value;
}

function checkSize(options: ClientOptions, key: keyof ClientOptions): number | undefined {
  const value = options[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(`option ${key} must be a non-negative integer, not ${String(value)}`);
  }
  return value;
}

function checkString(options: ClientOptions, key: 'listen' | 'redis' | 'advertise', fallback?: string): string | undefined {
  const value = options[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0) throw invalid(`option ${key} must be a non-empty string`);
  return value;
}

function toPayload(data: unknown): string | Uint8Array {
  if (typeof data === 'string' || data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw invalid(`data must be a string, Buffer, Uint8Array or ArrayBuffer, not ${describe(data)}`);
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
 * await worker.start();
 * worker.sendTo('results', 'hello');
 * ```
 *
 * Life cycle: `new` → {@link Client.start} → running → {@link Client.close} → closed. A closed
 * client cannot be started again; create a new one with the same name to resume its channels.
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
  #state: State = 'new';
  #running = false; // the core runs (started and not yet stopped)
  #opened: Promise<void> | undefined;
  #started: Promise<void> | undefined;
  #closed: Promise<void> | undefined;
  #address = '';
  #publishedAddress = '';
  #names: string[] = [];
  #iterators = new Set<MessageQueue>();
  #draining = false;

  /**
   * Validates the options; nothing touches the network until {@link Client.start} (or a call
   * that needs Redis, such as {@link Client.subscribe}).
   *
   * @throws LinerError `INVALID_ARGUMENT` when an option has the wrong type or form.
   */
  constructor(options: ClientOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
    this.name = checkName('name', options.name);
    this.topic = checkName('topic', options.topic);
    const redis = checkString(options, 'redis', 'redis://127.0.0.1:6379/0')!;
    if (!/^(redis|unix|redis\+unix):\/\//.test(redis)) {
      throw invalid(`redis URL '${redis}' must start with redis:// or unix://`);
    }
    const inFlight = checkSize(options, 'maxInFlightBytes') || DEFAULT_IN_FLIGHT;
    this.#highWater = inFlight;
    this.#budget = checkSize(options, 'deliveryBudgetBytes') || DEFAULT_BUDGET;
    try {
      this.#native = new addon.NativeClient({
        name: this.name,
        topic: this.topic,
        listen: checkString(options, 'listen', '127.0.0.1:0')!,
        redis,
        advertise: checkString(options, 'advertise'),
        maxMessageSize: checkSize(options, 'maxMessageSize') || undefined,
        compressThreshold: checkSize(options, 'compressThreshold') || undefined,
        maxSendQueueBytes: checkSize(options, 'maxSendQueueBytes') || undefined,
        maxSendQueueMessages: checkSize(options, 'maxSendQueueMessages') || undefined,
        maxReceiveQueueBytes: checkSize(options, 'maxReceiveQueueBytes') || undefined,
        maxInFlightBytes: inFlight,
      });
    } catch (e) {
      throw fromNative(e);
    }
    // Messages wait in the core while nobody listens: a listener added later gets them.
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'message') queueMicrotask(() => this.#kick());
    });
  }

  /** The address the client listens on (`"127.0.0.1:40123"`), once started; `""` before. */
  get address(): string {
    return this.#address;
  }

  /** The address registered in Redis (the advertised one if set), once started; `""` before. */
  get publishedAddress(): string {
    return this.#publishedAddress;
  }

  /** True between a successful {@link Client.start} and {@link Client.close}. */
  get running(): boolean {
    return this.#state === 'running';
  }

  /** True once {@link Client.close} was called. */
  get closed(): boolean {
    return this.#state === 'closing' || this.#state === 'closed';
  }

  /**
   * Starts the client: binds its listen address, registers it under its topic and
   * subscriptions, and reconnects to the peers it has pending messages for. Calling it again
   * while it starts or runs returns the same Promise.
   *
   * A running client keeps the process alive, like a server, until {@link Client.close} (or
   * {@link Client.unref}).
   *
   * @throws LinerError `STORE` (Redis), `BIND` (listen address), `INVALID_ARGUMENT` (address or
   *   URL form), `STARTUP`, `CLOSED`. A failed start leaves nothing registered and may be retried.
   */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new LinerError('CLOSED', 'cannot start a closed client'));
    return (this.#started ??= this.#start());
  }

  async #start(): Promise<void> {
    this.#state = 'starting';
    try {
      await this.#open();
      const [bound, published] = await this.#native.run(this.#onWake);
      this.#running = true;
      this.#address = bound;
      this.#publishedAddress = published;
      if (this.#state === 'starting') this.#state = 'running';
    } catch (e) {
      if (this.#state === 'starting') this.#state = 'new';
      this.#started = undefined;
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
   * Stops and releases the client: removes its address from every directory it registered in,
   * sends what is queued (waiting up to about 2 s), stores unacknowledged at-least-once
   * messages in Redis, and hands every message it already acknowledged to your handlers. Then
   * `messages()` iterators end and `close` is emitted.
   *
   * Idempotent (every call returns the same Promise) and safe from inside a message handler.
   */
  close(): Promise<void> {
    return (this.#closed ??= this.#close());
  }

  async #close(): Promise<void> {
    const starting = this.#started;
    this.#state = 'closing';
    try {
      if (starting) await starting.catch(() => undefined);
      if (this.#running) await this.#native.stop();
      else if (this.#opened) await this.#opened.catch(() => undefined);
    } finally {
      this.#running = false;
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
   * The first send to a topic (or to a new peer of it) asks Redis where the topic lives and
   * opens the channel, which costs a few Redis round trips on the calling thread; later sends
   * only enqueue.
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
   * the error is thrown after the others were queued.
   */
  sendAll(topic: string, data: Payload, options?: SendOptions): void {
    this.#send(true, topic, data, options);
  }

  #send(all: boolean, topic: string, data: Payload, options: SendOptions | undefined): void {
    if (this.#state !== 'running') throw this.#notRunning(all ? 'sendAll' : 'sendTo');
    if (typeof topic !== 'string') throw invalid(`topic must be a string, not ${describe(topic)}`);
    const payload = toPayload(data);
    const atLeastOnce = options?.atLeastOnce !== false;
    const rc = all
      ? this.#native.sendAll(topic, payload, atLeastOnce)
      : this.#native.sendTo(topic, payload, atLeastOnce);
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
   * Undoes {@link Client.subscribe}. Running senders learn of it within a fraction of a second;
   * sends to a topic nobody serves any more throw `NO_ADDRESS`.
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
    if (typeof topic !== 'string' || topic === '') throw invalid('topic must be a non-empty string');
    try {
      await this.#call('refreshAddressTopic', () => this.#native.refresh(topic));
      return true;
    } catch (e) {
      if (e instanceof LinerError && e.code === 'NO_ADDRESS') return false;
      throw e;
    }
  }

  /** The peers serving `topic` now, as registered in Redis. */
  async listAddresses(topic: string): Promise<TopicAddress[]> {
    if (typeof topic !== 'string' || topic === '') throw invalid('topic must be a non-empty string');
    const rows = await this.#call('listAddresses', () => this.#native.listAddresses(topic));
    return rows.map(([address, name]) => ({ address, name }));
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

  /** Counters of the client (see {@link ClientStats}). */
  stats(): ClientStats {
    return this.#native.stats(this.#state === 'running');
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
    return new LinerError('NOT_RUNNING', `cannot ${what} before the client is started`);
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
      try {
        this.emit('status', { kind, topic, peer, message });
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
