/**
 * The counters of a client ({@link ClientStats}), and how they are read from the addon's
 * record: the core's counters, which exist only while the core client does and cannot be read
 * while it starts or stops, and those of the delivery into JS, which can always be read.
 *
 * @packageDocumentation
 */
import type { NativeStats } from './native.js';

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

/** The core's counters before the core client first ran (and the shape of `CoreStats`). @internal */
export const NO_CORE_STATS = {
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
/** The core's part of {@link ClientStats}. @internal */
export type CoreStats = typeof NO_CORE_STATS;

/** The core's counters in `s`, or undefined when the record has none (no core client). @internal */
export function coreStatsOf(s: NativeStats): CoreStats | undefined {
  if (s.messagesSent === undefined) return undefined;
  const out = { ...NO_CORE_STATS };
  for (const key of Object.keys(out) as (keyof CoreStats)[]) out[key] = s[key] ?? 0;
  return out;
}
