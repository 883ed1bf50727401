/**
 * Status events: what a running client tells about its peers and about failures that do not
 * belong to one call.
 *
 * Every event arrives twice: once as `client.on('status', e)` with its {@link StatusKind}, and
 * once under its own name (`client.on('peer-connected', e)`, …, see {@link StatusEventName});
 * store and send errors come as `error` events carrying a {@link LinerStatusError}.
 *
 * @packageDocumentation
 */
import { LinerError, type LinerErrorCode } from './errors.js';

/**
 * Kinds of {@link StatusEvent}.
 *
 * - `peerConnected` / `peerDisconnected`: a peer joined or left a topic this client uses, or a
 *   connection between this client and a peer opened or ended (in either direction: this
 *   client's sender connected to a peer, or a peer's sender connected to this client).
 * - `peerSubscribed` / `peerUnsubscribed`: a peer (un)subscribed to a topic this client uses.
 * - `routeLost`: a connection to a peer failed or closed with messages in flight (at-least-once
 *   messages are kept and sent again, or stored in Redis).
 * - `senderStoreError` / `listenerStoreError`: Redis failed under the sender or the listener;
 *   an outage is told once per side, when that side's connection is lost, not once per failed
 *   call (a store error over a working connection is told, the same text again only after a
 *   pause that doubles from 1 s up to 1 min).
 * - `storeRecovered`: Redis answers that side again; the message names the side and counts the
 *   errors not told meanwhile.
 * - `sendError`: a write to a peer failed, or messages that waited for a look-up were dropped
 *   (nobody serves their topic, or the client stopped before Redis answered).
 * - `busy`: a peer's send queue is full (sends to it throw `BUSY`).
 * - `writable`: that queue has room again; `drain()` resolves on it.
 *
 * "A topic this client uses": its own topic, its subscriptions, and the topics it sent to,
 * refreshed ({@link Client.refreshAddressTopic}) or listed ({@link Client.listAddresses}).
 */
export type StatusKind =
  | 'peerConnected'
  | 'peerDisconnected'
  | 'peerSubscribed'
  | 'peerUnsubscribed'
  | 'routeLost'
  | 'senderStoreError'
  | 'sendError'
  | 'listenerStoreError'
  | 'busy'
  | 'writable'
  | 'storeRecovered';

/** The kinds that report a failure; they are also emitted as `error` events ({@link LinerStatusError}). */
export type StatusErrorKind = 'senderStoreError' | 'listenerStoreError' | 'sendError';

/**
 * Names of the per-kind events of a client (the other kinds are `error` events):
 *
 * | event | kind |
 * |---|---|
 * | `'peer-connected'` | `peerConnected` |
 * | `'peer-disconnected'` | `peerDisconnected` |
 * | `'subscribed'` | `peerSubscribed` |
 * | `'unsubscribed'` | `peerUnsubscribed` |
 * | `'route-lost'` | `routeLost` |
 * | `'busy'` | `busy` |
 * | `'writable'` | `writable` |
 * | `'store-recovered'` | `storeRecovered` |
 */
export type StatusEventName =
  | 'peer-connected'
  | 'peer-disconnected'
  | 'subscribed'
  | 'unsubscribed'
  | 'route-lost'
  | 'busy'
  | 'writable'
  | 'store-recovered';

/** Kinds by the core's number (index = value of native/core/status_event.hpp's StatusKind). */
const KINDS: readonly (StatusKind | undefined)[] = [
  undefined,
  'peerConnected',
  'peerDisconnected',
  'peerSubscribed',
  'peerUnsubscribed',
  'routeLost',
  'senderStoreError',
  'sendError',
  'listenerStoreError',
  'busy',
  'writable',
  'storeRecovered',
];

const EVENT_NAMES: Partial<Record<StatusKind, StatusEventName>> = {
  peerConnected: 'peer-connected',
  peerDisconnected: 'peer-disconnected',
  peerSubscribed: 'subscribed',
  peerUnsubscribed: 'unsubscribed',
  routeLost: 'route-lost',
  busy: 'busy',
  writable: 'writable',
  storeRecovered: 'store-recovered',
};

const ERROR_CODES: Partial<Record<StatusKind, LinerErrorCode>> = {
  senderStoreError: 'STORE',
  listenerStoreError: 'STORE',
  sendError: 'SEND',
};

/** One status event, as emitted by `client.on('status', …)` and the per-kind events. */
export interface StatusEvent {
  /** What happened. */
  kind: StatusKind;
  /**
   * The topic concerned: for directory changes the topic joined, left or (un)subscribed; for a
   * connection of this client's sender, the topic it first sent to on it; for a peer's sender
   * that connected to this client, that peer's own topic. `""` when not known.
   */
  topic: string;
  /**
   * The peer's address (`"host:port"`) for directory changes and this client's own
   * connections; `""` for a peer's sender that connected to this client (only its topic is
   * known).
   */
  peer: string;
  /** Details, for logs (wording may change). */
  message: string;
}

/**
 * A failure the client reports on its own, not as the answer to a call: Redis failed under
 * its sender or listener (`code` `STORE`), or a write to a peer failed (`code` `SEND`). The
 * client goes on: at-least-once messages are kept (in memory, then in Redis) and sent again,
 * Redis is retried.
 *
 * @example
 * ```ts
 * client.on('error', (e) => {
 *   if (e instanceof LinerStatusError) console.warn(`liner ${e.code} (${e.kind}) ${e.peer}: ${e.message}`);
 *   else throw e; // a message handler threw
 * });
 * ```
 */
export class LinerStatusError extends LinerError {
  /** Which part failed. */
  readonly kind: StatusErrorKind;
  /** As {@link StatusEvent.topic}. */
  readonly topic: string;
  /** As {@link StatusEvent.peer}. */
  readonly peer: string;

  /** @param event - the `senderStoreError`, `listenerStoreError` or `sendError` event it reports. */
  constructor(event: StatusEvent) {
    super(ERROR_CODES[event.kind] ?? 'STORE', event.message || event.kind);
    this.name = 'LinerStatusError';
    this.kind = event.kind as StatusErrorKind;
    this.topic = event.topic;
    this.peer = event.peer;
  }
}

/** @internal */
export function statusKindOf(n: number): StatusKind | undefined {
  return KINDS[n];
}

/** The per-kind event name of `kind`, undefined for the error kinds. @internal */
export function statusEventNameOf(kind: StatusKind): StatusEventName | undefined {
  return EVENT_NAMES[kind];
}

/** True for the kinds emitted as `error` events. @internal */
export function isErrorKind(kind: StatusKind): kind is StatusErrorKind {
  return ERROR_CODES[kind] !== undefined;
}
