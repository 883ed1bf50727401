/**
 * When is there room to send again? The one place that decides what `client.drain()` waits for.
 *
 * A send refused with BUSY marks the gate busy; the core's `writable` status event (a peer's
 * send queue went back under half of its limits) opens it. Because a queue that was busy may
 * also vanish (its peer left, the client stopped) without a `writable` event, waiters are
 * released after at most `maxWaitMs` as well: `drain()` is a hint to retry, and a send after it
 * may still be refused with BUSY (then wait again).
 *
 * @internal
 * @packageDocumentation
 */
import { LinerError } from './errors.js';

export class DrainGate {
  #busy = false;
  #waiters: { resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  #closed: LinerError | undefined;

  constructor(private readonly maxWaitMs = 250) {}

  /** A send was refused with BUSY (or the core reported `busy`). */
  busy(): void {
    this.#busy = true;
  }

  /** The core reported room again. */
  writable(): void {
    this.#busy = false;
    this.#release();
  }

  /** Resolves at once unless a send was refused since the last `writable`. */
  wait(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (!this.#busy) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve();
        }, this.maxWaitMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** The client closed: current and later waits reject with `error`. */
  close(error: LinerError): void {
    this.#closed = error;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.reject(error);
    }
  }

  #release(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }
}
