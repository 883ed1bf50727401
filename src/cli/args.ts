/**
 * Command-line parsing for `liner`: `--name value`, `--name=value`, flags, repeatable options,
 * positionals and `--`. Options may come before or after the command name.
 *
 * @internal
 * @packageDocumentation
 */
import { usage } from './errors.js';

/** `string`: one value; `list`: repeatable; `flag`: no value. */
export type OptionKind = 'string' | 'list' | 'flag';

export interface OptionSpec {
  kind: OptionKind;
  /** One-letter alias (`-y`). */
  short?: string;
  /** What the value is, for the help text (`URL`, `MS`, …). */
  value?: string;
  help: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

export interface Parsed {
  options: Record<string, string | string[] | boolean | undefined>;
  positionals: string[];
}

/** A `--name VALUE` option; `value` names the value in the help text (`URL`, `T`, …). */
export function valueOption(value: string, help: string): OptionSpec {
  return { kind: 'string', value, help };
}

/** A repeatable `--name VALUE` option. */
export function listOption(value: string, help: string): OptionSpec {
  return { kind: 'list', value, help };
}

/** A `--name` flag (no value), with an optional one-letter alias. */
export function flagOption(help: string, short?: string): OptionSpec {
  return short === undefined ? { kind: 'flag', help } : { kind: 'flag', short, help };
}

/** Options every command understands. */
export const GLOBAL_OPTIONS: OptionSpecs = {
  store: valueOption('URL', 'store of the mesh: sqlite:FILE, redis://… (default: $LINER_STORE_URL, $LINER_REDIS_URL or redis://127.0.0.1:6379/0)'),
  redis: valueOption('URL', 'the same as --store'),
  json: flagOption('print JSON for scripts instead of text'),
  'no-color': flagOption('no colour even on a terminal (NO_COLOR=1 does the same)'),
  help: flagOption('show this help', 'h'),
};

/** Parses `argv` against `specs` (plus the global options). Throws CliError `USAGE`. */
export function parse(argv: readonly string[], specs: OptionSpecs): Parsed {
  const all: OptionSpecs = { ...GLOBAL_OPTIONS, ...specs };
  const shorts = new Map(Object.entries(all).flatMap(([name, s]) => (s.short ? [[s.short, name] as const] : [])));
  const options: Parsed['options'] = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    } else if (/^-[A-Za-z]$/.test(arg)) {
      name = shorts.get(arg[1]!);
      if (name === undefined) throw usage(`unknown option ${arg}`);
    } else {
      positionals.push(arg); // "-" (stdin) included
      continue;
    }
    const spec = all[name];
    if (!spec) throw usage(`unknown option --${name}`);
    if (spec.kind === 'flag') {
      if (inline !== undefined) throw usage(`option --${name} takes no value`);
      options[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('-') && next !== '-')) throw usage(`option --${name} needs a value${spec.value ? ` (${spec.value})` : ''}`);
      value = next;
      i++;
    }
    if (spec.kind === 'list') options[name] = [...((options[name] as string[] | undefined) ?? []), value];
    else if (options[name] !== undefined) throw usage(`option --${name} given twice`);
    else options[name] = value;
  }
  return { options, positionals };
}

/** An option's value as a non-negative integer (undefined when absent). */
export function intOption(parsed: Parsed, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = parsed.options[name];
  if (raw === undefined) return undefined;
  const s = String(raw);
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) {
    throw usage(`--${name} must be a whole number${max === Number.MAX_SAFE_INTEGER ? ` >= ${min}` : ` from ${min} to ${max}`}, not '${s}'`);
  }
  return Number(s);
}

/** An option's value as a duration in seconds (decimals allowed), returned in milliseconds. */
export function secondsOption(parsed: Parsed, name: string): number | undefined {
  const raw = parsed.options[name];
  if (raw === undefined) return undefined;
  const s = String(raw);
  if (!/^\d+(\.\d+)?$/.test(s)) throw usage(`--${name} must be a number of seconds, not '${s}'`);
  return Math.round(Number(s) * 1000);
}

/** Refuses positional arguments, for commands that take none. */
export function noPositionals(parsed: Parsed): void {
  if (parsed.positionals.length > 0) throw usage(`unexpected argument '${parsed.positionals[0]}'`);
}

export function stringOption(parsed: Parsed, name: string): string | undefined {
  const v = parsed.options[name];
  if (v === undefined) return undefined;
  if (v === '') throw usage(`--${name} must not be empty`);
  return String(v);
}

/** Help text of a command: usage line, description and options. */
export function helpText(usageLine: string, description: string, specs: OptionSpecs): string {
  const rows = Object.entries({ ...specs, ...GLOBAL_OPTIONS }).map(([name, s]) => {
    const left = `${s.short ? `-${s.short}, ` : '    '}--${name}${s.value ? ` ${s.value}` : ''}${s.kind === 'list' ? ' …' : ''}`;
    return [left, s.help] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length));
  return [
    `usage: ${usageLine}`,
    '',
    description,
    '',
    'options:',
    ...rows.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`),
  ].join('\n');
}
