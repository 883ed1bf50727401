/**
 * liner: a serverless peer-to-peer message broker. Peers find each other through Redis
 * (topic → address) and exchange messages directly over TCP; Redis also keeps the offline
 * queue of at-least-once messages. There is no broker process.
 *
 * ```ts
 * import { Client } from 'liner';
 * ```
 *
 * @packageDocumentation
 */
export { Client, version } from './client.js';
export type {
  ClientEvents,
  ClientOptions,
  ClientStats,
  Payload,
  PendingQueue,
  SendOptions,
  TopicAddress,
} from './client.js';
export { LinerError } from './errors.js';
export type { LinerErrorCode } from './errors.js';
export { getLimits, setLimits } from './limits.js';
export type { Limits, LimitsUpdate } from './limits.js';
export type { Message } from './messages.js';
export { LinerStatusError } from './status.js';
export type { StatusErrorKind, StatusEvent, StatusEventName, StatusKind } from './status.js';
