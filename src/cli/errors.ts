/**
 * Failures of the `liner` command: one class with a stable code, printed as one line.
 *
 * Exit status: 2 for usage errors (a bad option, argument, name or URL: the command did nothing),
 * 1 for everything else (Redis unreachable, unknown topic, a message not delivered, …).
 *
 * @internal
 * @packageDocumentation
 */

/** Stable codes of {@link CliError}, also printed by `--json`. */
export type CliErrorCode =
  | 'USAGE'
  | 'BAD_URL'
  | 'CONFIRMATION_REQUIRED'
  | 'REDIS_UNREACHABLE'
  | 'REDIS_ERROR'
  | 'STORE_ERROR'
  | 'UNKNOWN_TOPIC'
  | 'UNKNOWN_SENDER'
  | 'SENDER_RUNNING'
  | 'NOT_DELIVERED'
  | 'NOT_DRAINING'
  | 'TIMEOUT'
  | 'IO'
  | 'DEMO';

// INVALID_ARGUMENT: a LinerError about an option the user gave (a listen address, a name).
const USAGE_CODES: ReadonlySet<string> = new Set(['USAGE', 'BAD_URL', 'CONFIRMATION_REQUIRED', 'INVALID_ARGUMENT']);

export class CliError extends Error {
  /** A CliErrorCode, or the code of a LinerError that stopped the command (e.g. `NO_ADDRESS`). */
  readonly code: string;

  constructor(code: CliErrorCode | string, message: string) {
    super(message);
    this.name = 'CliError';
    this.code = code;
  }

  /** The process exit status for this error. */
  get exitCode(): number {
    return USAGE_CODES.has(this.code) ? 2 : 1;
  }
}

export function usage(message: string): CliError {
  return new CliError('USAGE', message);
}

/**
 * Any error as a CliError: LinerErrors keep their code; their message loses the generic hint
 * of the TS API (`(STORE: check the …)`) when the CLI says something more useful itself.
 */
export function toCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (error.name === 'LinerError' && typeof code === 'string') return new CliError(code, error.message);
    return new CliError('IO', error.message);
  }
  return new CliError('IO', String(error));
}
