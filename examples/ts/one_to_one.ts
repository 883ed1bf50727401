/**
 * One to one: a client sends to another by topic and gets an answer back.
 *
 *   node build/examples/ts/one_to_one.js [redis_url]
 *
 * `npm run demo` compiles the examples (tsc -p tsconfig.examples.json). Exits 0 when every
 * answer arrived.
 */
import { Client } from 'liner';

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
  if (answers.length !== 3) process.exitCode = 1;
}

void main(process.argv[2]);
