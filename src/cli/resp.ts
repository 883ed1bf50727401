/**
 * A small Redis client for the `liner` command: RESP2 over node:net, binary-safe, pipelined
 * (commands are written at once and answered in order), with a deadline on every reply.
 *
 * The CLI reads and inspects the Redis keys of a mesh with it; peers themselves (listen,
 * send, bench) use the liner Client. URL forms are the ones the core accepts
 * (native/core/redis_url.cpp): `redis://[user:pass@]host[:port][/db]`, `unix:///path[?db=N]`
 * and `redis+unix:///path[?db=N]`.
 *
 * @internal
 * @packageDocumentation
 */
import * as net from 'node:net';

import { CliError } from './errors.js';
import { hideSecrets, redact } from '../redact.js';

export { hideSecrets, passwordsIn, redact } from '../redact.js';

/** Where a Redis URL points. */
export interface RedisEndpoint {
  host: string;
  port: number;
  /** Unix socket path (then host and port are unused). */
  path?: string;
  user?: string;
  password?: string;
  db: number;
}

/** A reply: bulk strings are Buffers (binary-safe), status replies strings, nil is null. */
export type Reply = Buffer | string | number | null | Reply[];

function badUrl(url: string, why: string): CliError {
  return new CliError('BAD_URL', `invalid Redis URL '${redact(url)}': ${why}`);
}

function parseIntIn(text: string, lo: number, hi: number): number | undefined {
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= lo && n <= hi ? n : undefined;
}

/** Parses a Redis URL the way the core does; throws CliError `BAD_URL`. */
export function parseRedisUrl(url: string): RedisEndpoint {
  for (const scheme of ['unix://', 'redis+unix://']) {
    if (!url.startsWith(scheme)) continue;
    let rest = url.slice(scheme.length);
    let db = 0;
    const q = rest.indexOf('?');
    if (q >= 0) {
      const query = rest.slice(q + 1);
      rest = rest.slice(0, q);
      const n = query.startsWith('db=') ? parseIntIn(query.slice(3), 0, 1 << 20) : undefined;
      if (n === undefined) throw badUrl(url, 'only ?db=N is understood after a socket path');
      db = n;
    }
    if (!rest.startsWith('/')) throw badUrl(url, 'expected an absolute socket path');
    return { host: '', port: 0, path: rest, db };
  }
  if (!url.startsWith('redis://')) throw badUrl(url, 'expected redis://, unix:// or redis+unix://');
  const rest = url.slice('redis://'.length);
  const slash = rest.indexOf('/');
  let authority = slash >= 0 ? rest.slice(0, slash) : rest;
  let db = 0;
  if (slash >= 0 && slash + 1 < rest.length) {
    const n = parseIntIn(rest.slice(slash + 1), 0, 1 << 20);
    if (n === undefined) throw badUrl(url, 'the database must be a number');
    db = n;
  }
  const out: RedisEndpoint = { host: '', port: 6379, db };
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = userinfo.indexOf(':');
    const decode = (s: string): string => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    };
    out.user = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
    if (colon >= 0) out.password = decode(userinfo.slice(colon + 1));
  }
  let port = '';
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw badUrl(url, "unclosed '[' in the host");
    out.host = authority.slice(1, close);
    if (close + 1 < authority.length) {
      if (authority[close + 1] !== ':') throw badUrl(url, "unexpected text after ']'");
      port = authority.slice(close + 2);
    }
  } else {
    const colon = authority.lastIndexOf(':');
    out.host = colon >= 0 ? authority.slice(0, colon) : authority;
    if (colon >= 0) port = authority.slice(colon + 1);
  }
  if (!out.host) throw badUrl(url, 'missing host');
  if (port) {
    const n = parseIntIn(port, 1, 65535);
    if (n === undefined) throw badUrl(url, `bad port '${port}'`);
    out.port = n;
  }
  return out;
}

/** "host:port" or the socket path, for messages. */
export function describeEndpoint(e: RedisEndpoint): string {
  if (e.path) return e.path;
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** The Redis error text of a `-ERR …` reply. */
export class RedisReplyError extends Error {}

function encode(args: readonly (string | number | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

// Parses one reply at `at`; undefined when it has not fully arrived yet.
function parse(buf: Buffer, at: number): [Reply | RedisReplyError, number] | undefined {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const kind = buf[at];
  const line = buf.toString('utf8', at + 1, eol);
  const next = eol + 2;
  switch (kind) {
    case 0x2b: // +
      return [line, next];
    case 0x2d: // -
      return [new RedisReplyError(line), next];
    case 0x3a: // :
      return [Number(line), next];
    case 0x24: {
      // $
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return undefined;
      return [Buffer.from(buf.subarray(next, next + n)), next + n + 2];
    }
    case 0x2a: {
      // *
      const n = Number(line);
      if (n < 0) return [null, next];
      const items: Reply[] = [];
      let pos = next;
      let error: RedisReplyError | undefined;
      for (let i = 0; i < n; i++) {
        const item = parse(buf, pos);
        if (!item) return undefined;
        if (item[0] instanceof RedisReplyError) error ??= item[0];
        else items.push(item[0]);
        pos = item[1];
      }
      return [error ?? items, pos];
    }
    default:
      throw new CliError('REDIS_ERROR', `unexpected reply from Redis (${JSON.stringify(line.slice(0, 40))}): is this a Redis server?`);
  }
}

interface Waiter {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

/** Options of {@link RespClient.connect}. */
export interface ConnectOptions {
  /** Connect, AUTH and SELECT must be done within this time. Default 2000 ms (as the core). */
  connectTimeoutMs?: number;
  /** Every reply must arrive within this time. Default 10000 ms. */
  replyTimeoutMs?: number;
}

/** One connection to Redis. Every failure is a CliError with a one-line message. */
export class RespClient {
  readonly endpoint: RedisEndpoint;
  readonly #socket: net.Socket;
  #replyMs: number;
  #buf: Buffer = Buffer.alloc(0);
  #waiters: Waiter[] = [];
  #failure: CliError | undefined;
  #timer: NodeJS.Timeout | undefined;

  private constructor(endpoint: RedisEndpoint, socket: net.Socket, replyTimeoutMs: number) {
    this.endpoint = endpoint;
    this.#socket = socket;
    this.#replyMs = replyTimeoutMs;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (e: NodeJS.ErrnoException) => this.#fail(unreachable(endpoint, e)));
    socket.on('close', () =>
      this.#fail(new CliError('REDIS_UNREACHABLE', `Redis at ${describeEndpoint(endpoint)} closed the connection`)),
    );
  }

  /** Connects, authenticates and selects the URL's database. */
  static async connect(url: string, options: ConnectOptions = {}): Promise<RespClient> {
    const endpoint = parseRedisUrl(url);
    const connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    const socket = endpoint.path ? net.connect(endpoint.path) : net.connect(endpoint.port, endpoint.host);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new CliError('REDIS_UNREACHABLE', `Redis at ${describeEndpoint(endpoint)} did not answer within ${connectTimeoutMs / 1000} s`));
      }, connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(unreachable(endpoint, e));
      });
    });
    socket.setNoDelay(true);
    // The handshake (AUTH, SELECT or PING) is part of connecting: same deadline.
    const client = new RespClient(endpoint, socket, connectTimeoutMs);
    try {
      if (endpoint.password !== undefined) {
        await client.command(...(endpoint.user ? ['AUTH', endpoint.user, endpoint.password] : ['AUTH', endpoint.password]));
      }
      if (endpoint.db !== 0) await client.command('SELECT', endpoint.db);
      else await client.command('PING');
    } catch (e) {
      client.close();
      if (e instanceof RedisReplyError) {
        // Redis does not repeat AUTH's arguments in its reply; a proxy or another server might.
        const reply = hideSecrets(e.message, endpoint.password ? [endpoint.password] : []);
        throw new CliError('REDIS_ERROR', `Redis at ${describeEndpoint(endpoint)} refused the connection: ${reply}`);
      }
      throw e;
    }
    client.#replyMs = options.replyTimeoutMs ?? 10_000;
    return client;
  }

  /**
   * Sends one command; resolves to its reply, rejects with RedisReplyError for an error
   * reply and with CliError when the connection fails or the reply is late.
   */
  command(...args: (string | number | Buffer)[]): Promise<Reply> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<Reply>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#socket.write(encode(args));
      this.#arm();
    });
  }

  /** Sends several commands at once (one round trip); replies in order. */
  pipeline(commands: readonly (readonly (string | number | Buffer)[])[]): Promise<Reply[]> {
    return Promise.all(commands.map((c) => this.command(...c)));
  }

  /** Every key name matching a glob `pattern`, with SCAN (never KEYS: it would block Redis). */
  async scan(pattern: string, count = 1000): Promise<string[]> {
    const names = new Set<string>();
    let cursor = '0';
    do {
      const reply = (await this.command('SCAN', cursor, 'MATCH', pattern, 'COUNT', count)) as [Buffer, Buffer[]];
      cursor = reply[0].toString();
      for (const k of reply[1]) names.add(k.toString('utf8'));
    } while (cursor !== '0');
    return [...names].sort();
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#failure ??= new CliError('REDIS_UNREACHABLE', 'the Redis connection was closed');
    this.#socket.destroy();
  }

  // One timer for the oldest outstanding reply.
  #arm(): void {
    if (this.#timer || this.#waiters.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#fail(
        new CliError('REDIS_UNREACHABLE', `Redis at ${describeEndpoint(this.endpoint)} did not answer within ${this.#replyMs / 1000} s`),
      );
      this.#socket.destroy();
    }, this.#replyMs);
  }

  #onData(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      let parsed: ReturnType<typeof parse>;
      try {
        parsed = parse(this.#buf, pos);
      } catch (e) {
        this.#fail(e as CliError);
        this.#socket.destroy();
        return;
      }
      if (!parsed) break;
      pos = parsed[1];
      const waiter = this.#waiters.shift();
      if (this.#timer) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      if (waiter) {
        if (parsed[0] instanceof RedisReplyError) waiter.reject(parsed[0]);
        else waiter.resolve(parsed[0]);
      }
    }
    this.#buf = pos === this.#buf.length ? Buffer.alloc(0) : this.#buf.subarray(pos);
    this.#arm();
  }

  #fail(error: CliError): void {
    this.#failure ??= error;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const w of this.#waiters.splice(0)) w.reject(this.#failure);
  }
}

function unreachable(endpoint: RedisEndpoint, e: NodeJS.ErrnoException): CliError {
  const why: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOENT: 'no such socket',
    ENOTFOUND: 'unknown host',
    EAI_AGAIN: 'host name lookup failed',
    ETIMEDOUT: 'timed out',
    EHOSTUNREACH: 'host unreachable',
    ECONNRESET: 'connection reset',
    EACCES: 'permission denied',
  };
  return new CliError('REDIS_UNREACHABLE', `cannot reach Redis at ${describeEndpoint(endpoint)} (${why[e.code ?? ''] ?? e.message})`);
}
