/**
 * demo - liner's TypeScript API in five short acts (run it with `npm run demo`, which gives it a
 * temporary SQLite file as the store; `npm run demo -- --redis` starts a throwaway redis-server
 * instead).
 *
 *   1. one to one         orders asks billing; billing answers from inside its handler
 *   2. one to many        the newsroom sendAll()s bulletins to three subscribers
 *   3. producer-consumer  jobs go round-robin to three worker replicas of one topic
 *   4. offline delivery   at-least-once messages wait in the store while their receiver is down
 *   5. throughput         one-to-one messages per second, from sendTo to the JS handler
 *
 *   node build/examples/ts/demo.js [store_url]     e.g. sqlite:/tmp/demo.db or redis://127.0.0.1:6379/0
 *
 * Exits 0 when every count matches; otherwise 1, saying why on stderr.
 */
import { Client, LinerError, type Message } from 'liner-broker';

let store = 'sqlite:liner-demo.db';
let failures = 0;
const clients: Client[] = [];

function peer(name: string, topic = name): Client {
  const c = new Client({ name: `demo.${name}`, topic: `demo.${topic}`, store });
  clients.push(c);
  return c;
}

function expect(ok: boolean, what: string): void {
  console.log(`   ${ok ? '[ok]  ' : '[FAIL]'} ${what}`);
  if (!ok) failures++;
}

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

/** sendTo that waits with drain() while the peer's queue is full. */
async function send(client: Client, topic: string, data: string | Buffer): Promise<void> {
  for (;;) {
    try {
      client.sendTo(topic, data);
      return;
    } catch (e) {
      if (!(e instanceof LinerError && e.code === 'BUSY')) throw e;
      await client.drain();
    }
  }
}

const short = (topic: string): string => topic.replace(/^demo\./, '');

async function oneToOne(): Promise<void> {
  console.log('\n1. One to one - orders asks billing to charge 3 orders; billing answers from its handler.');
  const orders = peer('orders');
  const billing = peer('billing');
  let answers = 0;
  billing.on('message', ({ from, data }: Message) => {
    console.log(`   ${short(from)} -> billing: ${data}`);
    billing.sendTo(from, `charged ${data.toString().replace('charge ', '')}`);
  });
  orders.on('message', ({ from, data }: Message) => {
    console.log(`   ${short(from)} -> orders:  ${data}`);
    answers++;
  });
  await billing.start();
  await orders.start();
  for (let i = 1; i <= 3; i++) {
    orders.sendTo('demo.billing', `charge order ${i}`);
    await until(() => answers === i);
  }
  expect(answers === 3, `orders got ${answers} of 3 answers`);
}

async function oneToMany(): Promise<void> {
  console.log('\n2. One to many - the newsroom sendAll()s 2 bulletins to demo.news; 3 readers subscribed to it.');
  const newsroom = peer('newsroom');
  const readers = [1, 2, 3].map((i) => peer(`reader-${i}`));
  const got = readers.map(() => 0);
  for (const [i, reader] of readers.entries()) {
    reader.on('message', ({ to, data }: Message) => {
      console.log(`   newsroom -> ${short(to)} -> ${short(reader.topic)}: ${data}`);
      got[i]!++;
    });
    await reader.subscribe('demo.news');
    await reader.start();
  }
  await newsroom.start();
  for (let i = 1; i <= 2; i++) {
    newsroom.sendAll('demo.news', `bulletin ${i}`);
    await until(() => got.every((n) => n === i));
  }
  expect(got.every((n) => n === 2), `copies per reader: ${got.join(', ')} (2 each)`);
}

async function producerConsumer(): Promise<void> {
  const JOBS = 9;
  console.log(`\n3. Producer - consumer - the producer sends ${JOBS} jobs to demo.jobs, served by 3 worker replicas.`);
  const producer = peer('producer');
  const workers = [1, 2, 3].map((i) => peer(`worker-${i}`, 'jobs'));
  const done = new Map<string, number>();
  for (const worker of workers) {
    worker.on('message', ({ from, data }: Message) => {
      console.log(`   ${short(from)} -> ${worker.name.replace('demo.', '')}: ${data}`);
      worker.sendTo(from, worker.name);
    });
    await worker.start();
  }
  producer.on('message', ({ data }: Message) => done.set(data.toString(), (done.get(data.toString()) ?? 0) + 1));
  await producer.start();
  for (let i = 1; i <= JOBS; i++) await send(producer, 'demo.jobs', `job ${i}`);
  const total = (): number => [...done.values()].reduce((a, b) => a + b, 0);
  await until(() => total() === JOBS);
  const counts = workers.map((w) => done.get(w.name) ?? 0);
  expect(total() === JOBS && counts.every((n) => n === JOBS / 3), `jobs per worker: ${counts.join(', ')} - each job done once`);
}

async function offlineDelivery(): Promise<void> {
  console.log('\n4. Offline delivery - audit stops; records sent meanwhile wait in the store until it is back.');
  const clerk = peer('clerk');
  let audit = peer('audit');
  const records: string[] = [];
  const onRecord = ({ data }: Message): void => {
    console.log(`   clerk -> audit: ${data}`);
    records.push(data.toString());
  };
  audit.on('message', onRecord);
  await audit.start();
  await clerk.start();
  const address = audit.address;
  clerk.sendTo('demo.audit', 'record 1');
  await until(() => records.length === 1);
  await audit.close();
  console.log(`   audit (on ${address}) stopped; clerk sends records 2 and 3 anyway (at-least-once).`);
  clerk.sendTo('demo.audit', 'record 2');
  clerk.sendTo('demo.audit', 'record 3');
  await new Promise((r) => setTimeout(r, 200));
  console.log('   audit starts again (same name, same address).');
  audit = new Client({ name: 'demo.audit', topic: 'demo.audit', listen: address, store });
  clients.push(audit);
  audit.on('message', onRecord);
  await audit.start();
  await until(() => records.length === 3);
  expect(records.join(',') === 'record 1,record 2,record 3', `audit has ${records.length} of 3 records, in order`);
}

async function throughput(): Promise<void> {
  const N = 200_000;
  const SIZE = 100;
  console.log(`\n5. Throughput - ${N.toLocaleString('en')} one-to-one messages of ${SIZE} B, at-least-once, sendTo -> JS handler.`);
  const source = peer('source');
  const sink = peer('sink');
  let received = 0;
  sink.on('message', () => received++);
  await sink.start();
  await source.start();
  const payload = Buffer.alloc(SIZE, 'x');
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    try {
      source.sendTo('demo.sink', payload);
    } catch {
      await send(source, 'demo.sink', payload);
    }
  }
  await until(() => received === N, 30_000);
  const seconds = (performance.now() - started) / 1000;
  const rate = Math.round(N / seconds);
  expect(received === N, `${received.toLocaleString('en')} messages in ${seconds.toFixed(2)} s`);
  console.log(`   => ${rate.toLocaleString('en')} msgs/s (${((rate * SIZE) / 1e6).toFixed(0)} MB/s of payload), both peers in this one process`);
}

async function main(): Promise<void> {
  store = process.argv[2] ?? store;
  const started = Date.now();
  console.log(`liner demo: TypeScript peers; they find each other through the store (${store}) and talk over TCP.`);
  try {
    await oneToOne();
    await oneToMany();
    await producerConsumer();
    await offlineDelivery();
    await throughput();
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  console.log(`\ndemo: ${failures ? 'FAILED' : 'OK'} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  if (failures) throw new Error(`${failures} check(s) marked [FAIL] above`);
}

// A LinerError (the store unreachable, a send refused) or a missing message: exit 1, saying why.
main().catch((e: unknown) => {
  console.error(`error: demo: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
