/**
 * One to many: sendAll reaches every peer serving a topic - here three clients that subscribed
 * to "example.news" (a client's own topic works the same way for its replicas).
 *
 *   node build/examples/ts/one_to_many.js [redis_url]
 *
 * Exits 0 when every subscriber got every bulletin within 5 s; otherwise 1, saying why on stderr.
 */
import { Client } from 'liner-broker';

async function main(redis = 'redis://127.0.0.1:6379/0'): Promise<void> {
  const readers = ['ann', 'ben', 'cyd'].map((n) => new Client({ name: `example.${n}`, topic: `example.${n}`, redis }));
  const desk = new Client({ name: 'example.desk', topic: 'example.desk', redis });
  const got = new Map<string, string[]>();
  try {
    for (const reader of readers) {
      got.set(reader.name, []);
      reader.on('message', ({ to, data }) => got.get(reader.name)!.push(`${to}: ${data}`));
      await reader.subscribe('example.news');
      await reader.start();
    }
    await desk.start();
    for (let i = 1; i <= 2; i++) desk.sendAll('example.news', `bulletin ${i}`);

    const deadline = Date.now() + 5000;
    while ([...got.values()].some((l) => l.length < 2) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const [name, lines] of got) console.log(`${name} got ${JSON.stringify(lines)}`);
    if ([...got.values()].some((l) => l.length !== 2)) throw new Error('a subscriber did not get both bulletins within 5 s');
  } finally {
    await Promise.all([desk, ...readers].map((c) => c.close()));
  }
}

// A LinerError (Redis unreachable, a send refused) or a missing message: exit 1, saying why.
main(process.argv[2]).catch((e: unknown) => {
  console.error(`error: one_to_many: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
