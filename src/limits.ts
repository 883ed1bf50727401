/**
 * Process-wide limits: the values a client uses for every size option it was not given (or
 * was given as 0). The same knobs as the C API's `lnr_set_max_message_size` and friends.
 *
 * @packageDocumentation
 */
import { LinerError, fromNative } from './errors.js';
import { type NativeLimits, addon } from './native.js';

/**
 * The process-wide limits, in bytes or messages. A client's own option (see `ClientOptions`)
 * wins over these; an option absent or 0 means "use the process-wide value".
 */
export interface Limits {
  /**
   * Largest payload a client sends (larger ones throw `INVALID_ARGUMENT`) and accepts (a peer
   * sending a larger frame is disconnected). Default and maximum: 1 GiB minus the 21-byte frame
   * header, what liner_broker 1.3.1 peers accept. A client reads it for sends at each send and
   * for its listener when it starts.
   */
  maxMessageSize: number;
  /** Payloads larger than this are zstd-compressed on the wire. Default 1 MiB; at least 1. */
  compressThreshold: number;
  /** Per peer: messages queued or awaiting acknowledgement before sends to it throw `BUSY`. Default 0: no count limit. */
  maxSendQueueMessages: number;
  /** Per peer: bytes queued or awaiting acknowledgement before sends to it throw `BUSY`. Default 8 MiB; at least 1. */
  maxSendQueueBytes: number;
  /**
   * How long, in milliseconds, a running client's directory entries outlive its last lease
   * renewal (it renews every second): a client that crashed, was killed or lost Redis for
   * longer is removed from the directory by the next client that reads the topic, about this
   * long after (`peer-disconnected`), and registers again by itself if it was only cut off.
   * Default 7000; from 3000 to 3,600,000.
   */
  leaseMs: number;
}

/** What {@link setLimits} takes: any subset of {@link Limits}. */
export interface LimitsUpdate extends Partial<Limits> {
  /** Same as `maxSendQueueMessages` (the name of C's `lnr_set_max_send_queue`). */
  maxSendQueue?: number;
}

/** The process-wide limits now. */
export function getLimits(): Limits {
  return addon.getLimits();
}

/**
 * Changes the process-wide limits given (the others keep their value). They are shared by
 * every client of the process, worker threads included, and apply at once to clients that
 * were not given their own value (except a running listener's `maxMessageSize`, read when it
 * starts).
 *
 * @example
 * ```ts
 * import { setLimits } from 'liner-broker';
 * setLimits({ maxMessageSize: 16 * 1024 * 1024, maxSendQueueBytes: 8 * 1024 * 1024 });
 * ```
 * @throws LinerError `INVALID_ARGUMENT` for a value that is not an integer in its range; then
 *   nothing is changed. The message is the core's, the same as C and Python log for the value:
 *   `"max message size must be from 1 to 1073741803 bytes, not 0"`.
 */
export function setLimits(limits: LimitsUpdate): void {
  if (typeof limits !== 'object' || limits === null) throw new LinerError('INVALID_ARGUMENT', 'limits must be an object');
  const update: Partial<NativeLimits> = {};
  // Only what cannot be a size is refused here; the ranges are the core's, as in C and Python.
  const take = (key: keyof LimitsUpdate): number | undefined => {
    const value = limits[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new LinerError('INVALID_ARGUMENT', `${key} must be a non-negative integer, not ${String(value)}`);
    }
    return value;
  };
  update.maxMessageSize = take('maxMessageSize');
  update.compressThreshold = take('compressThreshold');
  update.maxSendQueueBytes = take('maxSendQueueBytes');
  update.leaseMs = take('leaseMs');
  const messages = take('maxSendQueueMessages');
  const alias = take('maxSendQueue');
  if (messages !== undefined && alias !== undefined && messages !== alias) {
    throw new LinerError('INVALID_ARGUMENT', 'maxSendQueue and maxSendQueueMessages are the same limit: give one');
  }
  update.maxSendQueueMessages = messages ?? alias;
  for (const key of Object.keys(update) as (keyof NativeLimits)[]) if (update[key] === undefined) delete update[key];
  try {
    addon.setLimits(update); // all or none
  } catch (e) {
    throw fromNative(e);
  }
}
