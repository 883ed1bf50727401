/**
 * ES module entry of liner: the same classes as the CommonJS entry (one copy of each, so
 * `instanceof LinerError` holds whichever way a program imports liner).
 *
 * @packageDocumentation
 */
export { Client, LinerError, version } from './index.js';
export type {
  ClientEvents,
  ClientOptions,
  ClientStats,
  LinerErrorCode,
  Message,
  Payload,
  SendOptions,
  StatusEvent,
  StatusKind,
  TopicAddress,
} from './index.js';
