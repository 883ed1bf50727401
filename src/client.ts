/**
 * The liner client: one peer of the mesh. This file holds the {@link Client} class: its life
 * cycle (start, stop, close) and its public methods. What the methods lean on has a file of
 * its own: options.ts (the options and their checks), arguments.ts (checks of names and
 * topics), send.ts (the send path), delivery.ts (messages and events into JS), stats.ts (the
 * counters) and introspection.ts (what Redis says about peers and offline queues).
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events';

import { checkName, checkTopic, describe, invalid } from './arguments.js';
import { type ClientEvents, Delivery } from './delivery.js';
import { DrainGate } from './drain.js';
import { LinerError, fromNative } from './errors.js';
import { type PendingQueue, type TopicAddress, pendingQueuesOf, topicAddressesOf } from './introspection.js';
import type { Message } from './messages.js';
import { type NativeClient, addon } from './native.js';
import { type ClientOptions, settingsOf } from './options.js';
import { type Payload, SendPath, type SendOptions } from './send.js';
import { type ClientStats, type CoreStats, NO_CORE_STATS, coreStatsOf } from './stats.js';

type State = 'idle' | 'starting' | 'running' | 'stopping' | 'closing' | 'closed';

/**
 * One liner peer: it listens on its own TCP port, registers its topic in Redis, and exchanges
 * messages with other peers directly over TCP.
 *
 * @example
 * ```ts
 * import { Client } from 'liner-broker';
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
  readonly #gate = new DrainGate();
  readonly #sends: SendPath;
  readonly #delivery: Delivery;
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

  /**
   * Validates the options; nothing touches the network until {@link Client.start} (or a call
   * that needs Redis, such as {@link Client.subscribe}).
   *
   * @throws LinerError `INVALID_ARGUMENT` when an option has the wrong type, form or range.
   */
  constructor(options: ClientOptions) {
    super();
    const settings = settingsOf(options);
    this.name = settings.native.name;
    this.topic = settings.native.topic;
    this.#advertise = settings.native.advertise ?? '';
    try {
      this.#native = new addon.NativeClient(settings.native);
    } catch (e) {
      throw fromNative(e);
    }
    this.#sends = new SendPath(this.#native, this.#gate);
    this.#delivery = new Delivery(this, this.#native, this.#gate, settings.deliveryBudgetBytes, settings.maxInFlightBytes);
    // Messages wait in the core while nobody listens: a listener added later gets them.
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'message') queueMicrotask(() => this.#delivery.kick());
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
      const [bound, published] = await this.#native.run(this.#delivery.wake);
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
      this.#delivery.wake();
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
      this.#delivery.deliverRest();
      this.#native.dispose();
      this.#state = 'closed';
      this.#delivery.close();
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
    if (this.#state !== 'running') throw this.#notRunning('sendTo');
    this.#sends.send(false, topic, data, options);
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
    if (this.#state !== 'running') throw this.#notRunning('sendAll');
    this.#sends.send(true, topic, data, options);
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
    return this.#sends.sendToMany(topic, messages, options);
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
    return topicAddressesOf(await this.#call('listAddresses', () => this.#native.listAddresses(topic)));
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
    return pendingQueuesOf(await this.#call('pendingByPeer', () => this.#native.pendingByPeer()));
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
    return this.#delivery.messages();
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
}

/** Version of the native addon (the package version). */
export const version: string = addon.version;
