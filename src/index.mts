/**
 * ES module entry of liner: the same classes as the CommonJS entry (one copy of each, so
 * `instanceof LinerError` holds whichever way a program imports liner).
 *
 * @packageDocumentation
 */
export { Client, LinerError, LinerStatusError, getLimits, setLimits, version } from './index.js';
export type {
  ClientEvents,
  ClientOptions,
  ClientStats,
  Limits,
  LimitsUpdate,
  LinerErrorCode,
  Message,
  Payload,
  PendingQueue,
  SendOptions,
  StatusErrorKind,
  StatusEvent,
  StatusEventName,
  StatusKind,
  TopicAddress,
} from './index.js';
