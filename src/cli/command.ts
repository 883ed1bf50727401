/**
 * What every `liner` subcommand is: its help, its options and a `run` that gets the parsed
 * command line, the Redis URL and the output.
 *
 * @internal
 * @packageDocumentation
 */
import { redact } from '../redact.js';
import type { OptionSpecs, Parsed } from './args.js';
import { CliError } from './errors.js';
import { Directory } from './layout.js';
import type { Output } from './output.js';

export interface Context {
  parsed: Parsed;
  /**
   * The store's URL: from --store (or its alias --redis), else $LINER_STORE_URL (or
   * $LINER_REDIS_URL), else the default; already checked for form.
   */
  storeUrl: string;
  /** Whether the URL was given (option or environment), not the default. */
  storeExplicit: boolean;
  out: Output;
}

export interface Command {
  name: string;
  /** One line for `liner --help`. */
  summary: string;
  usage: string;
  description: string;
  options: OptionSpecs;
  /** Resolves to the exit status (0 when undefined); failures throw CliError. */
  run(ctx: Context): Promise<number | void>;
}

/** Opens the command's view of Redis; a clear one-line error when Redis is not there. */
export async function openRedis(ctx: Context): Promise<Directory> {
  const directory = new Directory(ctx.storeUrl);
  try {
    await directory.ping();
  } catch (e) {
    if (e instanceof CliError && e.code === 'REDIS_UNREACHABLE' && !ctx.storeExplicit) {
      throw new CliError(e.code, `${e.message}; pass --store URL or set LINER_STORE_URL`);
    }
    throw e;
  }
  return directory;
}

/** The URL as printed (password hidden). */
export function shownUrl(ctx: Context): string {
  return redact(ctx.storeUrl);
}
