/**
 * Delivery into JS: the one place where what the core received becomes events on the JS
 * thread. Message batches go to `message` listeners and `messages()` iterators, status events
 * to `status`, their per-kind events and `error` ({@link ClientEvents} lists them all).
 *
 * The core wakes the JS thread when something waits; delivery then takes batches until none
 * waits, nobody listens, an iterator is full, or the turn's budget is spent. Whatever is not
 * taken waits in the core, which pushes back on the senders once `maxInFlightBytes` wait.
 *
 * @packageDocumentation
 */
import type { EventEmitter } from 'node:events';

import type { DrainGate } from './drain.js';
import { type Message, MessageQueue } from './messages.js';
import type { NativeBatch, NativeClient, NativeEvent } from './native.js';
import { LinerStatusError, type StatusEvent, isErrorKind, statusEventNameOf, statusKindOf } from './status.js';

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

const PER_MESSAGE_BUDGET = 64; // what a message costs the delivery budget on top of its bytes

/**
 * The delivery of one client. It emits on `client`, and tells `gate` of the core's `busy` and
 * `writable` events. After `close()` it takes nothing more.
 *
 * @internal
 */
export class Delivery {
  #names: string[] = []; // the names batches refer to by id (see NativeBatch), in id order
  #iterators = new Set<MessageQueue>();
  #draining = false;
  #closed = false;

  constructor(
    private readonly client: EventEmitter<ClientEvents>,
    private readonly native: NativeClient,
    private readonly gate: DrainGate,
    private readonly budgetBytes: number,
    private readonly highWaterBytes: number,
  ) {}

  // Called (through the native thread-safe function) when messages or events wait and the JS
  // side was idle.
  readonly wake = (): void => {
    const events = this.native.takeEvents();
    if (events) this.#dispatchEvents(events);
    this.kick();
  };

  /** Delivers what waits, unless a delivery is in progress (it goes on by itself). */
  kick(): void {
    if (!this.#draining && !this.#closed) this.#drain();
  }

  /** A new `messages()` iterator (see `Client.messages`); an ended one once closed. */
  messages(): AsyncIterableIterator<Message> {
    const queue = new MessageQueue(this.highWaterBytes, () => this.kick(), (q) => this.#iterators.delete(q));
    if (this.#closed) {
      queue.end();
    } else {
      this.#iterators.add(queue);
      queueMicrotask(() => this.kick());
    }
    return queue;
  }

  /** Everything still waiting, whoever listens (the client is closing). */
  deliverRest(): void {
    const events = this.native.takeEvents();
    if (events) this.#dispatchEvents(events);
    for (let batch = this.native.take(); batch !== undefined; batch = this.native.take()) this.#dispatch(batch);
  }

  /** The client is closed: nothing more is taken, and the iterators end after what they hold. */
  close(): void {
    this.#closed = true;
    for (const queue of this.#iterators) queue.end();
    this.#iterators.clear();
  }

  // Takes batches until none waits, nobody listens, an iterator is full, or this turn's budget
  // is spent (then continues on the next turn, after I/O and timers had their go).
  readonly #drain = (): void => {
    this.#draining = true;
    let budget = this.budgetBytes;
    for (;;) {
      if (this.#closed || !this.#accepting()) break;
      const batch = this.native.take();
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
    if (this.#iterators.size === 0) return this.client.listenerCount('message') > 0;
    for (const queue of this.#iterators) if (queue.full) return false;
    return true;
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
        this.client.emit('message', message);
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
      if (kind === 'writable') this.gate.writable();
      else if (kind === 'busy') this.gate.busy();
      const event: StatusEvent = { kind, topic, peer, message };
      try {
        this.client.emit('status', event);
      } catch (e) {
        this.#handlerFailed(e);
      }
      try {
        const name = statusEventNameOf(kind);
        if (name) this.client.emit(name, { ...event });
        // Only to listeners: a Redis hiccup must not crash a program that did not ask.
        else if (isErrorKind(kind) && this.client.listenerCount('error') > 0) {
          this.client.emit('error', new LinerStatusError(event));
        }
      } catch (e) {
        this.#handlerFailed(e);
      }
    }
  }

  #handlerFailed(error: unknown): void {
    if (this.client.listenerCount('error') > 0) {
      try {
        this.client.emit('error', error);
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
