/**
 * The send path: what a send takes ({@link Payload}, {@link SendOptions}) and how it reaches the
 * core. Sends are synchronous and run once per message, so this path does as little as it can:
 * the native side keeps the topic of the previous send, and a stream of sends to one topic
 * checks and converts that topic once, not on every send.
 *
 * @packageDocumentation
 */
import { checkText, describe, invalid } from './arguments.js';
import type { DrainGate } from './drain.js';
import { LinerError, codeOf, fromNative } from './errors.js';
import type { NativeClient } from './native.js';

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

/**
 * The sends of one client into its native side. The caller checks first that the client runs;
 * a send refused with `BUSY` marks the drain gate busy.
 *
 * @internal
 */
export class SendPath {
  // The topic the native side holds from the previous send (checked then), or undefined.
  #nativeTopic: string | undefined;

  constructor(
    private readonly native: NativeClient,
    private readonly gate: DrainGate,
  ) {}

  /** One message to one peer of `topic` (`all` false) or to every peer of it; throws what the core refuses. */
  send(all: boolean, topic: string, data: Payload, options: SendOptions | undefined): void {
    const topicArg = this.#topicArg(topic);
    const payload = toPayload(data);
    const atLeastOnce = options?.atLeastOnce !== false;
    const rc = all
      ? this.native.sendAll(topicArg, payload, atLeastOnce)
      : this.native.sendTo(topicArg, payload, atLeastOnce);
    this.#nativeTopic = topic;
    if (rc !== 0) {
      const error = new LinerError(codeOf(rc), this.native.lastError());
      if (error.code === 'BUSY') this.gate.busy();
      throw error;
    }
  }

  /** `messages` in order to one peer of `topic`; returns how many were queued (see `Client.sendToMany`). */
  sendToMany(topic: string, messages: readonly Payload[], options: SendOptions | undefined): number {
    if (!Array.isArray(messages)) throw invalid(`messages must be an array, not ${describe(messages)}`);
    const topicArg = this.#topicArg(topic);
    if (messages.length === 0) return 0;
    let n: number;
    try {
      n = this.native.sendToMany(topicArg, messages, options?.atLeastOnce !== false);
    } catch (e) {
      throw fromNative(e); // a message of the wrong type: INVALID_ARGUMENT, nothing queued
    }
    this.#nativeTopic = topic;
    if (n < 0) throw new LinerError(codeOf(-n), this.native.lastError());
    if (n < messages.length) this.gate.busy();
    return n;
  }

  // What a send passes as its topic: null for the one the native side already holds, so that a
  // stream to one topic checks and converts it once, not on every send.
  #topicArg(topic: string): string | null {
    if (typeof topic !== 'string') throw invalid(`topic must be a string, not ${describe(topic)}`);
    if (topic === this.#nativeTopic) return null;
    checkText('topic', topic);
    this.#nativeTopic = undefined; // until the native side has it, even if a step below throws
    return topic;
  }
}

function toPayload(data: unknown): string | Uint8Array {
  if (typeof data === 'string' || data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw invalid(`data must be a string, Buffer, Uint8Array or ArrayBuffer, not ${describe(data)}`);
}
