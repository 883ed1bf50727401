// Secrets stay secret: the Redis password of a URL never shows in a LinerError, a status event,
// an 'error' event or the output of the `liner` command (stdout and stderr, the core's log
// lines included), whether the URL is malformed, Redis refuses the password, nobody listens, or
// Redis goes wrong under running clients. Where a URL is shown, its password reads `***`.
import { afterEach, describe, expect, test } from 'vitest';

import { type Run, deadRedisUrl, liner, spawnLiner } from './support/cli.js';
import { PrivateRedis } from './support/private_redis.js';
import { Redis } from './support/redis.js';
import { Client, Inbox, LinerError, type StatusEvent, waitUntil } from './support/testkit.js';

const SECRET = 'Pw-7c1e-SECRET';

// URLs that do not parse, each holding the password, and how a message must show them.
const MALFORMED: [url: string, shown: string][] = [
  [`redis://user:${SECRET}@host:notaport/0`, 'redis://user:***@host:notaport/0'],
  [`redis://:${SECRET}@[bad/0`, 'redis://:***@[bad/0'],
  [`redis://:${SECRET}@127.0.0.1:6379/notadb`, 'redis://:***@127.0.0.1:6379/notadb'],
  [`rediss://user:${SECRET}@127.0.0.1:6379/0?ca=`, 'rediss://user:***@127.0.0.1:6379/0?ca='],
  [`redis://:${SECRET}@/0`, 'redis://:***@/0'],
  // A password holding '@', '/' or ':' (not percent-encoded, as it should be) is hidden whole.
  [`redis://:a@b/${SECRET}@127.0.0.1:x/0`, 'redis://:***@127.0.0.1:x/0'],
  [`unix://:${SECRET}@/tmp/redis.sock`, 'unix://:***@/tmp/redis.sock'],
];

function expectHidden(...texts: string[]): void {
  for (const text of texts) expect(text).not.toContain(SECRET);
}

function withPassword(url: string, password = SECRET): string {
  return url.replace('redis://', `redis://:${password}@`);
}

/** The LinerError that creating and starting a client on `redis` ends with. */
async function failure(redis: string): Promise<LinerError> {
  let client: Client | undefined;
  try {
    client = new Client({ name: 'secret', topic: 'secret_topic', listen: '127.0.0.1:0', redis });
    await client.start();
  } catch (e) {
    expect(e).toBeInstanceOf(LinerError);
    return e as LinerError;
  } finally {
    await client?.close();
  }
  throw new Error(`a client on ${redis} started`);
}

// Redis servers of this file, each with an authenticated admin connection; stopped after each test.
const servers: { redis: PrivateRedis; admin: Redis }[] = [];
afterEach(async () => {
  for (const { redis, admin } of servers.splice(0)) {
    admin.close();
    await redis.dispose();
  }
});

/** A private redis-server that requires `password`; `admin` may change it. */
async function redisWithPassword(password: string): Promise<{ redis: PrivateRedis; admin: Redis }> {
  const redis = await PrivateRedis.start();
  const admin = await Redis.connect(redis.url);
  servers.push({ redis, admin });
  await admin.cmd('CONFIG', 'SET', 'requirepass', password);
  await admin.cmd('AUTH', password);
  return { redis, admin };
}

/** Changes the password and drops every connection but the admin's. */
async function changePassword(admin: Redis): Promise<void> {
  await admin.cmd('CONFIG', 'SET', 'requirepass', 'another-password');
  await admin.cmd('CLIENT', 'KILL', 'TYPE', 'normal');
  await admin.cmd('CLIENT', 'KILL', 'TYPE', 'pubsub');
}

describe('the TypeScript API', () => {
  test.each(MALFORMED)('a malformed URL is named without its password: %s', async (url, shown) => {
    const e = await failure(url);
    expect(e.code).toBe('INVALID_ARGUMENT');
    expectHidden(e.message, String(e), e.stack ?? '');
    expect(e.message).toContain(shown);
  });

  test('Redis refusing the password', async () => {
    const { redis } = await redisWithPassword('another-password');
    for (const url of [withPassword(redis.url), redis.url.replace('redis://', `redis://default:${SECRET}@`)]) {
      const e = await failure(url);
      expect(e.code).toBe('STORE');
      expect(e.message).toContain('AUTH');
      expectHidden(e.message, e.stack ?? '');
    }
  });

  test('nobody listening', async () => {
    const e = await failure(withPassword(await deadRedisUrl()));
    expect(e.code).toBe('STORE');
    expect(e.message).toContain('unreachable');
    expectHidden(e.message, e.stack ?? '');
  });

  test('Redis changing its password, then stopping, under running clients', async () => {
    const { redis, admin } = await redisWithPassword(SECRET);
    const url = withPassword(redis.url);
    const listener = new Client({ name: 'listener', topic: 'listener_topic', redis: url });
    const sender = new Client({ name: 'sender', topic: 'sender_topic', redis: url });
    const late = new Client({ name: 'late', topic: 'late_topic', redis: url });
    const events: StatusEvent[] = [];
    const texts: string[] = []; // 'error' events and rejections
    for (const c of [listener, sender]) {
      c.on('status', (e) => events.push(e));
      c.on('error', (e: unknown) => void texts.push(String(e)));
    }
    const inbox = new Inbox(listener);
    // Sends at-least-once messages (their acknowledgements need Redis) until an event of
    // `kind` that says `needle` came.
    const sendsUntil = (kind: string, needle: string, timeoutMs = 8000) =>
      waitUntil(() => {
        try {
          sender.sendTo('listener_topic', 'm');
        } catch (e) {
          if ((e as LinerError).code !== 'BUSY') throw e;
        }
        return events.some((e) => e.kind === kind && e.message.includes(needle));
      }, timeoutMs, 50);
    // Calls that need Redis, until one fails saying `needle` (a failed connection is not tried
    // again for 200 ms, backing off to 2 s: until then it reports its last failure).
    const callsFailWith = (needle: string) =>
      waitUntil(async () => {
        const calls = [() => sender.listAddresses('listener_topic'), () => sender.refreshAddressTopic('listener_topic'),
          () => sender.subscribe('news'), () => sender.pendingCount()];
        let seen = false;
        for (const call of calls) {
          const reason = await call().then(() => '', (error: unknown) => String(error));
          texts.push(reason);
          seen ||= reason.includes(needle);
        }
        return seen;
      }, 5000, 50);
    try {
      await listener.start();
      await sender.start();
      sender.sendTo('listener_topic', 'warm-up');
      expect(await inbox.waitCount(1)).toBe(1);

      await changePassword(admin);
      expect(await sendsUntil('listenerStoreError', 'AUTH'), JSON.stringify(events)).toBe(true);
      expect(await sendsUntil('senderStoreError', 'AUTH'), JSON.stringify(events)).toBe(true);
      expect(await callsFailWith('AUTH'), texts.join('\n')).toBe(true);
      const e = await late.start().then(() => undefined, (error: unknown) => error as LinerError);
      expect(e?.code).toBe('STORE');
      texts.push(String(e));

      await redis.stop();
      // Still the same outage (the store did not answer in between): it was told once, so the
      // new cause shows in the calls' errors, not in a second event.
      expect(await sendsUntil('senderStoreError', 'unreachable', 1000), JSON.stringify(events)).toBe(false);
      expect(await callsFailWith('unreachable'), texts.join('\n')).toBe(true);
    } finally {
      for (const c of [late, sender, listener]) await c.close();
    }
    expect(texts.some((t) => t.includes('AUTH'))).toBe(true);
    expectHidden(...texts, ...events.map((e) => `${e.topic} ${e.peer} ${e.message}`));
  }, 20_000);
});

describe('the liner command', () => {
  const COMMANDS = [
    ['topics'],
    ['inspect'],
    ['send', '--to', 'secret_topic', 'hello'],
    ['listen', '--topic', 'secret_topic', '--timeout', '1'],
    ['purge', '--topic', 'secret_topic', '--yes'],
    ['bench', '--count', '10'],
  ];

  function expectQuiet(r: Run): void {
    expectHidden(r.stdout, r.stderr);
  }

  test('malformed URLs, from --redis and from $LINER_REDIS_URL', async () => {
    const runs = await Promise.all(
      MALFORMED.flatMap(([url, shown]) => [
        liner(['topics', '--redis', url]).then((r) => [r, shown] as const),
        liner(['send', '--to', 't', 'x', '--json', `--redis=${url}`]).then((r) => [r, shown] as const),
        liner(['inspect'], { env: { LINER_REDIS_URL: url } }).then((r) => [r, shown] as const),
      ]),
    );
    for (const [r, shown] of runs) {
      expect(r.code, r.stderr).toBe(2);
      expectQuiet(r);
      expect(r.stderr).toContain(shown);
    }
  });

  test('every command against a Redis that refuses the password, or that is not there', async () => {
    const { redis } = await redisWithPassword('another-password');
    const dead = await deadRedisUrl();
    const runs = await Promise.all(
      [withPassword(redis.url), withPassword(dead)].flatMap((url) =>
        COMMANDS.flatMap((command) => [liner([...command, '--redis', url]), liner([...command, '--json'], { env: { LINER_REDIS_URL: url } })]),
      ),
    );
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(1);
      expectQuiet(r);
      expect(r.stderr).toMatch(/WRONGPASS|cannot reach Redis/);
    }
  });

  test('a URL typed where a command or an argument goes', async () => {
    const url = `redis://:${SECRET}@127.0.0.1:1/0`;
    for (const args of [['--redis-url', url, 'topics'], ['purge', '--topic', 't', url], ['--json', url]]) {
      const r = await liner(args);
      expect(r.code, r.stderr).toBe(2);
      expectQuiet(r);
      expect(r.stderr).toContain('redis://:***@127.0.0.1:1/0');
    }
    for (const args of [['topics', '--help', '--redis', url], ['--version', `--redis=${url}`]]) {
      const r = await liner(args);
      expect(r.code, r.stderr).toBe(0);
      expectQuiet(r);
    }
  });

  test('with the right password, the URL the command prints reads ***', async () => {
    const { redis } = await redisWithPassword(SECRET);
    const url = withPassword(redis.url);
    const text = await liner(['topics', '--redis', url]);
    const json = await liner(['topics', '--json'], { env: { LINER_REDIS_URL: url } });
    const listen = await liner(['listen', '--topic', 'secret_topic', '--timeout', '0.5', '--redis', url]);
    for (const r of [text, json, listen]) {
      expect(r.code, r.stderr).toBe(0);
      expectQuiet(r);
    }
    expect(text.stdout).toContain(withPassword(redis.url, '***'));
    expect((JSON.parse(json.stdout) as { redis: string }).redis).toBe(withPassword(redis.url, '***'));
  });

  test('liner demo relays the story of a demo that prints its URL', async () => {
    const { redis } = await redisWithPassword(SECRET);
    const r = await liner(['demo', '--redis', withPassword(redis.url)]);
    expect(r.code, r.stderr).toBe(0);
    expectQuiet(r);
    expect(r.stdout).toMatch(/demo: OK/);
    expect(r.stdout).toContain(withPassword(redis.url, '***'));
  });

  test('liner listen while Redis changes its password: its log lines say so without it', async () => {
    const { redis, admin } = await redisWithPassword(SECRET);
    const listen = spawnLiner(['listen', '--topic', 'secret_topic', '--timeout', '2', '--redis', withPassword(redis.url)]);
    await listen.waitStderr('listening as');
    await changePassword(admin);
    await listen.wait();
    // Leaving, the peer cannot remove its address from the directory: the core logs why.
    expect(listen.stderr).toContain('AUTH');
    expectHidden(listen.stdout, listen.stderr);
  });
});
