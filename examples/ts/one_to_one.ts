/**
 * One to one: a client sends to another by topic and gets an answer back.
 *
 *   node build/examples/ts/one_to_one.js [redis_url]
 *
 * `npm run demo` compiles the examples (tsc -p tsconfig.examples.json). Exits 0 when every
 * answer arrived within 5 s; otherwise 1, saying why on stderr.
 */
import { Client } from 'liner-broker';

async function main(redis = 'redis://127.0.0.1:6379/0'): Promise<void> {
  await using alice = new Client({ name: 'example.alice', topic: 'example.alice', redis });
  await using bob = new Client({ name: 'example.bob', topic: 'example.bob', redis });

  // Bob answers every question, from inside his handler, to whoever asked (`from`).
  bob.on('message', ({ from, data }) => bob.sendTo(from, `re: ${data}`));
  const answers: string[] = [];
  alice.on('message', ({ data }) => answers.push(data.toString()));
  await alice.start();
  await bob.start();

  for (let i = 1; i <= 3; i++) alice.sendTo('example.bob', `question ${i}`);
  const deadline = Date.now() + 5000;
  while (answers.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const a of answers) console.log(`alice got "${a}"`);
  if (answers.length !== 3) throw new Error(`alice got ${answers.length} of 3 answers within 5 s`);
}

// A LinerError (Redis unreachable, a send refused) or a missing message: exit 1, saying why.
main(process.argv[2]).catch((e: unknown) => {
  console.error(`error: one_to_one: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
