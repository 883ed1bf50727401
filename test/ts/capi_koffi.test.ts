// The C ABI (include/liner.h, build/libliner_broker.so) driven from TypeScript through koffi:
// create, run with a receive callback, send, receive, and the error paths.
import * as path from 'node:path';

import koffi from 'koffi';
import { afterAll, expect, test } from 'vitest';

import { freePort, redisUrl, useMesh, waitUntil } from './support/testkit.js';

useMesh(); // a flushed database per test

const LNR_OK = 0;
const LNR_ERR_NOT_RUNNING = 1;
const LNR_ERR_SELF_TOPIC = 3;
const LNR_ERR_NO_ADDR = 5;
const LNR_ERR_STORE = 7;
const LNR_ERR_INVALID_ARG = 8;

const lib = koffi.load(path.resolve(__dirname, '../../build/libliner_broker.so'));
const ReceiveCb = koffi.proto(
  'void lnr_receive_cb(const char* to, const char* from, const void* data, size_t data_size, void* udata)',
);
const AddrCb = koffi.proto('void lnr_addr_cb(const char* addr, const char* unique_name, void* udata)');
const c = {
  newClient: lib.func('void* lnr_new_client_redis(const char*, const char*, const char*, const char*)'),
  run: lib.func('int lnr_run(void*, lnr_receive_cb*, void*)'),
  sendTo: lib.func('int lnr_send_to(void*, const char*, const void*, size_t, int)'),
  sendAll: lib.func('int lnr_send_all(void*, const char*, const void*, size_t, int)'),
  subscribe: lib.func('int lnr_subscribe(void*, const char*)'),
  stop: lib.func('int lnr_stop(void*)'),
  isRunning: lib.func('int lnr_is_running(void*)'),
  listAddresses: lib.func('int lnr_list_addresses(void*, const char*, lnr_addr_cb*, void*)'),
  deleteClient: lib.func('int lnr_delete_client(void*)'),
  lastCode: lib.func('int lnr_last_error_code(void*)'),
  lastMessage: lib.func('const char* lnr_last_error_message(void*)'),
  createError: lib.func('const char* lnr_last_create_error(void)'),
  createCode: lib.func('int lnr_last_create_error_code(void)'),
  boundAddr: lib.func('const char* lnr_bound_listen_addr(void*)'),
  version: lib.func('const char* lnr_version(void)'),
};

type Received = { to: string; from: string; data: Buffer };
const received: Received[] = [];
// Called on the library's delivery threads; koffi relays the call to the JS thread.
const onReceive = koffi.register((to: string, from: string, data: unknown, size: number | bigint) => {
  received.push({ to, from, data: Buffer.from(koffi.decode(data, koffi.array('uint8_t', Number(size))) as Uint8Array) });
}, koffi.pointer(ReceiveCb));
afterAll(() => koffi.unregister(onReceive));

const handles: unknown[] = [];
function create(name: string, topic: string, url = redisUrl): unknown {
  const h = c.newClient(name, topic, '127.0.0.1:0', url);
  if (h) handles.push(h);
  return h;
}
afterAll(() => {
  for (const h of handles) c.deleteClient(h);
});

test('create, run, send and receive through the C ABI', async () => {
  received.length = 0;
  expect(c.version()).toMatch(/^1\.3\.1-liner\./);
  const a = create('capi_a', 'capi_topic_a');
  const b = create('capi_b', 'capi_topic_b');
  expect(a).toBeTruthy();
  expect(b).toBeTruthy();
  expect(c.boundAddr(a)).toBeNull(); // not bound before run
  expect(c.run(a, onReceive, null)).toBe(1);
  expect(c.run(b, onReceive, null)).toBe(1);
  expect(c.isRunning(a)).toBe(1);
  expect(c.boundAddr(b)).toMatch(/^127\.0\.0\.1:\d+$/);

  const hello = Buffer.from('hello from a');
  expect(c.sendTo(a, 'capi_topic_b', hello, hello.length, 1)).toBe(1);
  expect(c.lastCode(a)).toBe(LNR_OK);
  const news = Buffer.from([0, 1, 2, 255]);
  expect(c.subscribe(a, 'capi_news')).toBe(1);
  expect(await waitUntil(() => c.sendAll(b, 'capi_news', news, news.length, 0) === 1, 2000)).toBe(true);
  expect(await waitUntil(() => received.length === 2)).toBe(true);
  expect(received).toContainEqual({ to: 'capi_topic_b', from: 'capi_topic_a', data: hello });
  expect(received).toContainEqual({ to: 'capi_news', from: 'capi_topic_b', data: news });

  const addrs: [string, string][] = [];
  const onAddr = koffi.register((addr: string, name: string) => addrs.push([addr, name]), koffi.pointer(AddrCb));
  try {
    expect(c.listAddresses(a, 'capi_topic_b', onAddr, null)).toBe(1);
  } finally {
    koffi.unregister(onAddr);
  }
  expect(addrs).toEqual([[c.boundAddr(b), 'capi_b']]);

  expect(c.stop(a)).toBe(1);
  expect(c.isRunning(a)).toBe(0);
  expect(c.sendTo(a, 'capi_topic_b', hello, hello.length, 1)).toBe(0);
  expect(c.lastCode(a)).toBe(LNR_ERR_NOT_RUNNING);
});

test('error paths: bad handles, bad strings, own topic, nobody there, unreachable Redis', async () => {
  const a = create('capi_err', 'capi_err_topic');
  expect(c.run(a, onReceive, null)).toBe(1);
  const data = Buffer.from('x');

  expect(c.sendTo(a, 'capi_err_topic', data, 1, 1)).toBe(0);
  expect(c.lastCode(a)).toBe(LNR_ERR_SELF_TOPIC);
  expect(c.lastMessage(a)).toMatch(/own topic/);
  expect(c.sendTo(a, 'nobody_serves_this', data, 1, 1)).toBe(0);
  expect(c.lastCode(a)).toBe(LNR_ERR_NO_ADDR);
  expect(c.sendTo(a, '', data, 1, 1)).toBe(0);
  expect(c.lastCode(a)).toBe(LNR_ERR_INVALID_ARG);
  expect(c.sendTo(a, 'nobody_serves_this', data, 0, 1)).toBe(0);
  expect(c.lastCode(a)).toBe(LNR_ERR_INVALID_ARG);
  expect(c.sendTo(a, 'nobody_serves_this', null, 5, 1)).toBe(0);
  expect(c.lastCode(a)).toBe(LNR_ERR_INVALID_ARG);
  expect(c.run(a, onReceive, null)).toBe(1); // already running: keeps the first callback
  const e = create('capi_no_cb', 'capi_no_cb_topic');
  expect(c.run(e, null, null)).toBe(0);
  expect(c.lastCode(e)).toBe(LNR_ERR_INVALID_ARG);

  // NULL and unknown handles are refused, never a crash.
  expect(c.sendTo(null, 'x', data, 1, 1)).toBe(0);
  expect(c.lastCode(null)).toBe(LNR_OK);
  expect(c.lastMessage(null)).toBeNull();
  expect(c.deleteClient(null)).toBe(0);

  // Bad arguments at creation.
  expect(c.newClient('', 't', '127.0.0.1:0', redisUrl)).toBeNull();
  expect(c.createCode()).toBe(LNR_ERR_INVALID_ARG);
  expect(c.newClient('n', 't', 'no-port', redisUrl)).toBeNull();
  expect(c.createCode()).toBe(LNR_ERR_INVALID_ARG);
  expect(c.newClient('n', 't', '127.0.0.1:0', null)).toBeNull();
  expect(c.createCode()).toBe(LNR_ERR_INVALID_ARG);
  const port = await freePort();
  const started = Date.now();
  expect(c.newClient('n', 't', '127.0.0.1:0', `redis://127.0.0.1:${port}/0`)).toBeNull();
  expect(c.createCode()).toBe(LNR_ERR_STORE);
  expect(c.createError()).not.toBe('');
  expect(Date.now() - started).toBeLessThan(5000);

  // Deleting twice: the second is detected.
  const d = c.newClient('capi_twice', 'capi_twice_topic', '127.0.0.1:0', redisUrl);
  expect(c.deleteClient(d)).toBe(1);
  expect(c.deleteClient(d)).toBe(0);
  expect(c.sendTo(d, 'x', data, 1, 1)).toBe(0);
});
