/**
 * Status events: what a running client tells about its peers and about failures that do not
 * belong to one call.
 *
 * @packageDocumentation
 */

/**
 * Kinds of {@link StatusEvent}.
 *
 * - `peerConnected` / `peerDisconnected`: a peer joined or left a topic this client uses, or a
 *   sender connected to this client or went away.
 * - `peerSubscribed` / `peerUnsubscribed`: a peer (un)subscribed to a topic this client uses.
 * - `routeLost`: a connection to a peer failed or closed with messages in flight (at-least-once
 *   messages are kept and sent again, or stored in Redis).
 * - `senderStoreError` / `listenerStoreError`: Redis failed under the sender or the listener.
 * - `sendError`: a write to a peer failed.
 * - `busy`: a peer's send queue is full (sends to it throw `BUSY`).
 * - `writable`: that queue has room again; `drain()` resolves on it.
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
  | 'writable';

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
];

/** One status event, as emitted by `client.on('status', …)`. */
export interface StatusEvent {
  /** What happened. */
  kind: StatusKind;
  /** The topic concerned ("" when none; for a sender that connected to us: its topic). */
  topic: string;
  /** The peer's address ("host:port"), "" when not known. */
  peer: string;
  /** Details, for logs. */
  message: string;
}

/** @internal */
export function statusKindOf(n: number): StatusKind | undefined {
  return KINDS[n];
}
