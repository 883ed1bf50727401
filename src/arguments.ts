/**
 * Checks of what users pass to the API: types, and text that could not reach the core intact,
 * which a binding has to check itself; the rules on names and addresses are the core's, asked
 * here before the call that would apply them, so that their errors come first as they did.
 *
 * @internal
 * @packageDocumentation
 */
import { LinerError, fromNative } from './errors.js';
import { addon } from './native.js';

/** An `INVALID_ARGUMENT` error saying `reason`. */
export function invalid(reason: string): LinerError {
  return new LinerError('INVALID_ARGUMENT', reason);
}

/** What `value` is, for messages: its type, or its class for objects (`Map`, `Array`, …). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}

// A NUL would end the name early in C, and a lone surrogate cannot be encoded as UTF-8 (it
// would silently become U+FFFD): both are refused, as in the C and Python bindings.
export function checkText(what: string, value: string): void {
  if (value.includes('\0')) throw invalid(`${what} must not contain a NUL character`);
  if (/\p{Cs}/u.test(value)) throw invalid(`${what} must be valid Unicode text (it has a lone surrogate)`);
}

// A client name, or a topic to own or subscribe to. The rule for what such a name may hold is
// the core's (native/core/names.hpp), the same for every binding.
export function checkName(what: 'name' | 'topic', value: unknown): string {
  if (typeof value !== 'string') throw invalid(`${what} must be a string, not ${describe(value)}`);
  if (value.length === 0) throw invalid(`${what} must not be empty`);
  try {
    addon.NativeClient.checkName(what, value);
  } catch (e) {
    throw fromNative(e);
  }
  checkText(what, value);
  return value;
}

/** A topic to look up (refresh, list): any non-empty string the core can read. */
export function checkTopic(topic: unknown): string {
  if (typeof topic !== 'string' || topic === '') throw invalid(`topic must be a non-empty string, not ${describe(topic)}`);
  checkText('topic', topic);
  return topic;
}
