// A minimal RESP2 client for test assertions: binary-safe, one command at a time.
import * as net from 'node:net';

export type Reply = Buffer | string | number | null | Reply[];

export class Redis {
  #socket: net.Socket;
  #buf = Buffer.alloc(0);
  #queue: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
      for (;;) {
        const parsed = parse(this.#buf, 0);
        if (!parsed) break;
        this.#buf = this.#buf.subarray(parsed[1]);
        const waiter = this.#queue.shift()!;
        const [reply] = parsed;
        if (reply instanceof Error) waiter.reject(reply);
        else waiter.resolve(reply);
      }
    });
    socket.on('error', (e) => {
      for (const w of this.#queue.splice(0)) w.reject(e);
    });
  }

  /** Connects to a redis:// URL and selects its database. */
  static async connect(url: string): Promise<Redis> {
    const u = new URL(url);
    const socket = net.connect(Number(u.port || 6379), u.hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const r = new Redis(socket);
    const db = u.pathname.replace('/', '');
    if (db) await r.cmd('SELECT', db);
    return r;
  }

  cmd(...args: (string | number | Buffer)[]): Promise<Reply> {
    const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ resolve, reject });
      this.#socket.write(Buffer.concat(parts));
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  // ---- conveniences -------------------------------------------------------------------------

  async keys(): Promise<string[]> {
    return ((await this.cmd('KEYS', '*')) as Buffer[]).map((k) => k.toString()).sort();
  }

  async get(key: string): Promise<string | null> {
    const v = (await this.cmd('GET', key)) as Buffer | null;
    return v === null ? null : v.toString();
  }

  async type(key: string): Promise<string> {
    return (await this.cmd('TYPE', key)) as string;
  }

  async hgetall(key: string): Promise<Record<string, string>> {
    const flat = (await this.cmd('HGETALL', key)) as Buffer[];
    const out: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) out[flat[i]!.toString()] = flat[i + 1]!.toString();
    return out;
  }

  async llen(key: string): Promise<number> {
    return (await this.cmd('LLEN', key)) as number;
  }

  async lrange(key: string): Promise<Buffer[]> {
    return (await this.cmd('LRANGE', key, 0, -1)) as Buffer[];
  }

  /** {key: [type, value]} of every key of the database, values in comparable form. */
  async dump(): Promise<Record<string, [string, unknown]>> {
    const out: Record<string, [string, unknown]> = {};
    for (const key of await this.keys()) {
      const t = await this.type(key);
      if (t === 'string') out[key] = [t, await this.get(key)];
      else if (t === 'hash') out[key] = [t, await this.hgetall(key)];
      else if (t === 'list') out[key] = [t, (await this.lrange(key)).map((b) => b.toString('hex'))];
      else out[key] = [t, null];
    }
    return out;
  }
}

function parse(buf: Buffer, at: number): [Reply | Error, number] | undefined {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const kind = String.fromCharCode(buf[at]!);
  const line = buf.toString('utf8', at + 1, eol);
  const next = eol + 2;
  switch (kind) {
    case '+':
      return [line, next];
    case '-':
      return [new Error(line), next];
    case ':':
      return [Number(line), next];
    case '$': {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return undefined;
      return [Buffer.from(buf.subarray(next, next + n)), next + n + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const items: Reply[] = [];
      let pos = next;
      for (let i = 0; i < n; i++) {
        const item = parse(buf, pos);
        if (!item) return undefined;
        if (item[0] instanceof Error) return [item[0], item[1]];
        items.push(item[0]);
        pos = item[1];
      }
      return [items, pos];
    }
    default:
      throw new Error(`bad RESP reply ${JSON.stringify(line)}`);
  }
}
