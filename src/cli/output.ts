/**
 * How the `liner` command writes: plain text for people (colour only on a terminal), JSON for
 * scripts, one-line errors, tables, sizes, a progress bar and safe previews of payloads.
 *
 * @internal
 * @packageDocumentation
 */
import type { CliError } from './errors.js';

/** Whether to colour what goes to `stream`: a terminal, unless NO_COLOR or --no-color; FORCE_COLOR forces it. */
export function colourWanted(stream: NodeJS.WriteStream, disabled: boolean): boolean {
  if (disabled || process.env.NO_COLOR !== undefined) return false;
  const force = process.env.FORCE_COLOR;
  if (force !== undefined && force !== '0' && force !== 'false') return true;
  return stream.isTTY === true && process.env.TERM !== 'dumb';
}

type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan';
const SGR: Record<Style, [number, number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  cyan: [36, 39],
};

/** Where and how a command writes. */
export class Output {
  readonly json: boolean;
  readonly #colour: boolean;
  readonly #errColour: boolean;

  constructor(options: { json: boolean; noColor: boolean }) {
    this.json = options.json;
    this.#colour = colourWanted(process.stdout, options.noColor);
    this.#errColour = colourWanted(process.stderr, options.noColor);
  }

  /** `text` in `style` when stdout is coloured. */
  paint(style: Style, text: string): string {
    return this.#colour ? `\x1b[${SGR[style][0]}m${text}\x1b[${SGR[style][1]}m` : text;
  }

  /** A line on stdout. */
  line(text = ''): void {
    process.stdout.write(`${text}\n`);
  }

  /** A value as one JSON document on stdout (pretty unless it is a stream record). */
  data(value: unknown, compact = false): void {
    process.stdout.write(`${compact ? JSON.stringify(value) : JSON.stringify(value, null, 2)}\n`);
  }

  /** A remark for people on stderr (never mixed into stdout, which scripts may parse). */
  note(text: string): void {
    const s = this.#errColour ? `\x1b[2m${text}\x1b[22m` : text;
    process.stderr.write(`${s}\n`);
  }

  /** A warning on stderr. */
  warn(text: string): void {
    const s = this.#errColour ? `\x1b[33m${text}\x1b[39m` : text;
    process.stderr.write(`liner: ${s}\n`);
  }

  /** The one line a failed command prints (JSON with --json). */
  error(command: string, e: CliError): void {
    if (this.json) {
      process.stderr.write(`${JSON.stringify({ error: { code: e.code, message: e.message, command } })}\n`);
      return;
    }
    const where = command ? `liner ${command}` : 'liner';
    const text = `${where}: ${oneLine(e.message)}`;
    process.stderr.write(`${this.#errColour ? `\x1b[31m${text}\x1b[39m` : text}\n`);
  }

  /** Rows aligned in columns (the header dimmed); cells may hold colour codes. */
  table(header: string[], rows: string[][], align: ('l' | 'r')[] = []): void {
    const width = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
    const fmt = (cells: string[]): string =>
      cells
        .map((c, i) => {
          const pad = ' '.repeat(width[i]! - visible(c));
          return align[i] === 'r' ? pad + c : i === cells.length - 1 ? c : c + pad;
        })
        .join('  ');
    this.line(this.paint('dim', fmt(header)));
    for (const r of rows) this.line(fmt(r));
  }
}

/** Message text on one line (a multi-line reason would break the one-line contract). */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function visible(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/** 1234567 -> "1,234,567". */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Bytes for people: "512 B", "1.5 KiB", "64.0 MiB". */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/**
 * A preview of a payload that is safe to print on a terminal: at most `max` bytes, text with
 * every control character escaped (no escape sequence of the payload reaches the terminal),
 * or hex when the bytes are not UTF-8 text.
 */
export function preview(data: Uint8Array, max: number): { text: string; kind: 'text' | 'hex'; truncated: boolean } {
  const truncated = data.length > max;
  let head = Buffer.from(data.buffer, data.byteOffset, Math.min(data.length, max));
  let text: string | undefined;
  // A cut in the middle of a UTF-8 sequence is not binary: drop up to 3 trailing bytes.
  for (let cut = 0; cut <= (truncated ? 3 : 0) && cut < head.length; cut++) {
    const candidate = head.subarray(0, head.length - cut);
    const decoded = decodeStrict(candidate);
    if (decoded !== undefined) {
      text = decoded;
      head = candidate;
      break;
    }
  }
  if (text !== undefined && !mostlyControl(text)) {
    return { text: escapeText(text), kind: 'text', truncated };
  }
  const hexBytes = Buffer.from(data.buffer, data.byteOffset, Math.min(data.length, Math.max(1, Math.floor(max / 3))));
  return {
    text: [...hexBytes].map((b) => b.toString(16).padStart(2, '0')).join(' '),
    kind: 'hex',
    truncated: data.length > hexBytes.length,
  };
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function decodeStrict(b: Uint8Array): string | undefined {
  try {
    return decoder.decode(b);
  } catch {
    return undefined;
  }
}

function mostlyControl(s: string): boolean {
  if (s.length === 0) return false;
  // eslint-disable-next-line no-control-regex
  const control = s.match(/[\x00-\x08\x0e-\x1f\x7f]/g)?.length ?? 0;
  return control * 4 > s.length;
}

/** Escapes control characters (C0, DEL, C1, line/paragraph separators, bidi overrides) and backslashes. */
export function escapeText(s: string): string {
  const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f\\\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    return named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** A progress bar on stderr, redrawn in place; only on a terminal. */
export class ProgressBar {
  readonly #enabled: boolean;
  readonly #total: number;
  #last = 0;

  constructor(total: number, enabled: boolean) {
    this.#total = total;
    this.#enabled = enabled;
  }

  update(done: number, suffix: string, force = false): void {
    if (!this.#enabled) return;
    const now = Date.now();
    if (!force && now - this.#last < 100) return;
    this.#last = now;
    const width = 30;
    const filled = Math.min(width, Math.round((done / this.#total) * width));
    const pct = Math.min(100, Math.floor((done / this.#total) * 100));
    process.stderr.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(pct).padStart(3)}%  ${suffix}\x1b[K`);
  }

  /** Removes the bar, so that what follows starts on a clean line. */
  clear(): void {
    if (this.#enabled) process.stderr.write('\r\x1b[K');
  }
}
