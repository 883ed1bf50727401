/**
 * Errors thrown by liner: one class, {@link LinerError}, with a stable string `code`.
 *
 * @packageDocumentation
 */

/**
 * Stable error codes. Compare `error.code` against these strings; messages may change.
 *
 * | code | meaning | what to do |
 * |---|---|---|
 * | `NOT_RUNNING` | the call needs a started client | `await client.start()` first |
 * | `ALREADY_RUNNING` | the call needs a client that is not running | call it before `start()` or after `stop()` |
 * | `SELF_TOPIC` | the topic is the client's own topic | send to / subscribe to another topic |
 * | `INTERNAL_TOPIC` | the topic is reserved by liner | pick another topic name |
 * | `NO_ADDRESS` | no peer serves the topic right now | start a peer for it, or retry later |
 * | `BIND` | the listen address cannot be resolved or bound | use another `listen` address/port |
 * | `STORE` | Redis is unreachable or answered with an error | check the `redis` URL and the server |
 * | `INVALID_ARGUMENT` | a wrong type, empty or malformed name, URL or payload | fix the argument |
 * | `CLEAR_WHILE_RUNNING` | `clear*()` needs a client that is not running | call it before `start()` or after `stop()` |
 * | `STARTUP` | the client could not start its threads or listener | see the message |
 * | `BUSY` | the peer's send queue is full; the message was NOT queued | `await client.drain()`, then send again |
 * | `CLOSED` | the client was closed | create a new client |
 * | `SEND` | a write to a peer failed (only on `error` events, see `LinerStatusError`) | nothing: messages are sent again or stored |
 *
 * `STORE` also comes on `error` events when Redis fails under a running client.
 */
export type LinerErrorCode =
  | 'NOT_RUNNING'
  | 'ALREADY_RUNNING'
  | 'SELF_TOPIC'
  | 'INTERNAL_TOPIC'
  | 'NO_ADDRESS'
  | 'BIND'
  | 'STORE'
  | 'INVALID_ARGUMENT'
  | 'CLEAR_WHILE_RUNNING'
  | 'STARTUP'
  | 'BUSY'
  | 'CLOSED'
  | 'SEND';

/** Codes in the order of the core's numbers (`LNR_ERR_*` of include/liner.h, index = value). */
const CODES: readonly (LinerErrorCode | undefined)[] = [
  undefined,
  'NOT_RUNNING',
  'ALREADY_RUNNING',
  'SELF_TOPIC',
  'INTERNAL_TOPIC',
  'NO_ADDRESS',
  'BIND',
  'STORE',
  'INVALID_ARGUMENT',
  'CLEAR_WHILE_RUNNING',
  'STARTUP',
  'BUSY',
];

const HINTS: Record<LinerErrorCode, string> = {
  NOT_RUNNING: 'call `await client.start()` first',
  ALREADY_RUNNING: 'call it before `start()` or after `stop()`',
  SELF_TOPIC: "a client cannot send to or subscribe to its own topic",
  INTERNAL_TOPIC: 'this topic name is reserved by liner: pick another',
  NO_ADDRESS: 'no peer serves this topic now: start one, or retry later',
  BIND: 'use another `listen` address or port',
  STORE: 'check the `redis` URL and that the server is up',
  INVALID_ARGUMENT: 'fix the argument',
  CLEAR_WHILE_RUNNING: 'call it while the client is not running: before `start()` or after `stop()`',
  STARTUP: 'the client could not start; see the reason',
  BUSY: 'the message was not queued: `await client.drain()` and send it again',
  CLOSED: 'the client is closed: create a new one',
  SEND: 'at-least-once messages are sent again or kept in Redis',
};

/**
 * The error liner throws (or rejects with). `code` is stable; `message` says what went wrong
 * and what to do about it.
 *
 * @example
 * ```ts
 * try {
 *   client.sendTo('jobs', payload);
 * } catch (e) {
 *   if (e instanceof LinerError && e.code === 'BUSY') await client.drain();
 *   else throw e;
 * }
 * ```
 */
export class LinerError extends Error {
  /** One of {@link LinerErrorCode}. */
  readonly code: LinerErrorCode;
  /**
   * What went wrong, without the hint: for errors of the core's rules, the same text that C's
   * `lnr_last_error_message` and Python's `LinerError.message` give for the same input.
   */
  readonly reason: string;

  /**
   * @param code - the stable code.
   * @param reason - what went wrong; a hint saying what to do is appended.
   */
  constructor(code: LinerErrorCode, reason: string) {
    super(`${reason} (${code}: ${HINTS[code]})`);
    this.name = 'LinerError';
    this.code = code;
    this.reason = reason;
  }
}

/** The code of a core error number (STARTUP for a number this version does not know). @internal */
export function codeOf(lnrCode: number): LinerErrorCode {
  return CODES[lnrCode] ?? 'STARTUP';
}

/**
 * Turns what the addon threw or rejected with (an Error carrying `lnrCode`) into a
 * LinerError; anything else is returned unchanged.
 *
 * @internal
 */
export function fromNative(error: unknown): unknown {
  if (error instanceof LinerError) return error;
  if (error instanceof Error && typeof (error as { lnrCode?: unknown }).lnrCode === 'number') {
    return new LinerError(codeOf((error as unknown as { lnrCode: number }).lnrCode), error.message);
  }
  return error;
}
