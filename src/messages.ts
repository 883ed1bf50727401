/**
 * Received messages, and the async iterator of `client.messages()`.
 *
 * @packageDocumentation
 */

/**
 * One received message.
 *
 * `data` is a view into a batch buffer shared with the messages that arrived with it (no copy
 * is made per message). Keeping a few is fine; to keep many small ones for a long time, copy
 * them (`Buffer.from(message.data)`) so the batches can be freed.
 */
export interface Message {
  /** The topic it was sent to: this client's own topic or one of its subscriptions. */
  readonly to: string;
  /** The sender's topic ("" if the sender cannot be resolved). */
  readonly from: string;
  /** The payload (at least one byte). */
  readonly data: Buffer;
}

/**
 * The queue behind one `client.messages()` iterator. The client pushes every message into it;
 * while the queue holds more than `highWaterBytes`, the client stops taking messages from the
 * core (which then pushes back on the senders) until it is consumed below half of that.
 *
 * @internal
 */
export class MessageQueue implements AsyncIterableIterator<Message> {
  #items: Message[] = [];
  #head = 0;
  #bytes = 0;
  #waiters: ((result: IteratorResult<Message>) => void)[] = [];
  #ended = false;
  #holding = false; // the client saw this queue full and stopped taking messages

  constructor(
    private readonly highWaterBytes: number,
    private readonly onRoom: () => void,
    private readonly onReturn: (queue: MessageQueue) => void,
  ) {}

  /**
   * True while this queue asks the client to stop taking messages. Once it said so, the client
   * hears back (`onRoom`) when the queue is consumed below half of its high-water mark.
   */
  get full(): boolean {
    if (this.#bytes >= this.highWaterBytes) this.#holding = true;
    return this.#holding;
  }

  push(message: Message): void {
    if (this.#ended) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter({ value: message, done: false });
      return;
    }
    this.#items.push(message);
    this.#bytes += message.data.length;
  }

  /** No more messages will come: the iterator finishes once the queue is empty. */
  end(): void {
    this.#ended = true;
    if (this.#head < this.#items.length) return;
    for (const w of this.#waiters.splice(0)) w({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<Message>> {
    if (this.#head < this.#items.length) {
      const message = this.#items[this.#head++]!;
      this.#bytes -= message.data.length;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      if (this.#holding && this.#bytes < this.highWaterBytes / 2) {
        this.#holding = false;
        this.onRoom();
      }
      return Promise.resolve({ value: message, done: false });
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The consumer stopped (`break` in `for await`): drop what is queued. */
  return(): Promise<IteratorResult<Message>> {
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#holding = false;
    if (!this.#ended) {
      this.#ended = true;
      this.onReturn(this);
    }
    for (const w of this.#waiters.splice(0)) w({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return this;
  }
}
