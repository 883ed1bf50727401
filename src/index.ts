/**
 * liner: a serverless peer-to-peer message broker. Peers find each other through Redis
 * (topic → address) and exchange messages directly over TCP; Redis also keeps the offline
 * queue of at-least-once messages. There is no broker process.
 *
 * ```ts
 * import { Client } from 'liner-broker';
 * ```
 *
 * @packageDocumentation
 */
export { Client, version } from './client.js';
export type { ClientEvents } from './delivery.js';
export type { ClientOptions } from './options.js';
export type { ClientStats } from './stats.js';
export type { Payload, SendOptions } from './send.js';
export type { PendingQueue, TopicAddress } from './introspection.js';
export { LinerError } from './errors.js';
export type { LinerErrorCode } from './errors.js';
export { getLimits, setLimits } from './limits.js';
export type { Limits, LimitsUpdate } from './limits.js';
export type { Message } from './messages.js';
export { LinerStatusError } from './status.js';
export type { StatusErrorKind, StatusEvent, StatusEventName, StatusKind } from './status.js';
