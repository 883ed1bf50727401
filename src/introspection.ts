/**
 * What a client reads about the mesh from Redis, running or not: who serves a topic
 * ({@link TopicAddress}, from `listAddresses`) and what waits for offline listeners
 * ({@link PendingQueue}, from `pendingByPeer`), made from the addon's rows.
 *
 * @packageDocumentation
 */
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

/** The addon's `listAddresses` rows as objects. @internal */
export function topicAddressesOf(rows: [address: string, name: string][]): TopicAddress[] {
  return rows.map(([address, name]) => ({ address, name }));
}

/** The addon's `pendingByPeer` rows as objects. @internal */
export function pendingQueuesOf(rows: [address: string, topic: string, name: string, count: number][]): PendingQueue[] {
  return rows.map(([address, topic, name, count]) => ({ name, address, topic, count }));
}
