// The advertise address: a client bound to 0.0.0.0 registers the address peers should use
// instead (port 0 = the bound port), is reachable there, and reports boundAddress and
// publishedAddress; setAdvertiseAddress() only while not running, literal ip:port only.
import { expect, test } from 'vitest';

import { Client, Inbox, LinerError, freePort, redisUrl, useMesh } from './support/testkit.js';

const mesh = useMesh();

test('bound to 0.0.0.0:0, advertising 127.0.0.1:0: registered and reachable at 127.0.0.1:<bound port>', async () => {
  const listener = mesh.client('listener', 'listener_topic', { listen: '0.0.0.0:0', advertise: '127.0.0.1:0' });
  expect(listener.advertiseAddress).toBe('127.0.0.1:0');
  expect(listener.boundAddress).toBe('');
  expect(listener.publishedAddress).toBe('');
  const inbox = new Inbox(listener);
  await listener.start();
  const port = listener.boundAddress.split(':')[1];
  expect(listener.boundAddress).toMatch(/^0\.0\.0\.0:\d+$/);
  expect(listener.address).toBe(listener.boundAddress);
  expect(Number(port)).toBeGreaterThan(0);
  expect(listener.publishedAddress).toBe(`127.0.0.1:${port}`);
  expect(await mesh.rdb().hgetall('lnr_topic:listener_topic:addr')).toEqual({ [`127.0.0.1:${port}`]: 'listener' });

  const sender = mesh.client('sender', 'sender_topic');
  await sender.start();
  expect(await sender.listAddresses('listener_topic')).toEqual([{ address: `127.0.0.1:${port}`, name: 'listener' }]);
  sender.sendTo('listener_topic', 'via the advertised address');
  expect(await inbox.waitCount(1)).toBe(1);
  expect(inbox.payloads()).toEqual(['via the advertised address']);
});

test('an advertised address with its own port is registered as given', async () => {
  const port = await freePort();
  const c = mesh.client('peer', 'peer_topic', { advertise: `127.0.0.1:${port}` });
  await c.start();
  expect(c.publishedAddress).toBe(`127.0.0.1:${port}`);
  expect(c.boundAddress).not.toBe(c.publishedAddress);
  expect(await mesh.rdb().hgetall('lnr_topic:peer_topic:addr')).toEqual({ [`127.0.0.1:${port}`]: 'peer' });
});

test('setAdvertiseAddress: ALREADY_RUNNING while running, applied at the next start, "" clears it', async () => {
  const c = mesh.client('peer', 'peer_topic', { listen: '0.0.0.0:0' });
  await c.start();
  expect(c.publishedAddress).toBe(c.boundAddress); // no advertise: the bound address
  let error: unknown;
  try {
    c.setAdvertiseAddress('127.0.0.1:0');
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(LinerError);
  expect(error).toMatchObject({ code: 'ALREADY_RUNNING' });
  expect(c.advertiseAddress).toBe('');

  await c.stop();
  c.setAdvertiseAddress('127.0.0.1:0');
  expect(c.advertiseAddress).toBe('127.0.0.1:0');
  await c.start();
  expect(c.publishedAddress).toBe(`127.0.0.1:${c.boundAddress.split(':')[1]}`);
  expect(await mesh.rdb().hgetall('lnr_topic:peer_topic:addr')).toEqual({ [c.publishedAddress]: 'peer' });

  await c.stop();
  c.setAdvertiseAddress('');
  await c.start();
  expect(c.publishedAddress).toBe(c.boundAddress);

  // Also refused while starting and stopping.
  const stopping = c.stop();
  expect(() => c.setAdvertiseAddress('127.0.0.1:0')).toThrow(expect.objectContaining({ code: 'ALREADY_RUNNING' }));
  await stopping;
  const starting = c.start();
  expect(() => c.setAdvertiseAddress('127.0.0.1:0')).toThrow(expect.objectContaining({ code: 'ALREADY_RUNNING' }));
  await starting;
  await c.close();
  expect(() => c.setAdvertiseAddress('127.0.0.1:0')).toThrow(expect.objectContaining({ code: 'CLOSED' }));
});

test.each([
  ['a host name', 'localhost:4000'],
  ['no port', '127.0.0.1'],
  ['a port out of range', '127.0.0.1:70000'],
  ['a non-canonical IPv6 form', '[0:0:0:0:0:0:0:1]:4000'],
  ['garbage', 'not an address'],
])('an advertise address with %s is INVALID_ARGUMENT, in the constructor and the setter', (_, address) => {
  const options = { name: 'peer', topic: 'peer_topic', redis: redisUrl, advertise: address };
  expect(() => new Client(options)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  const c = new Client({ name: 'peer', topic: 'peer_topic', redis: redisUrl });
  expect(() => c.setAdvertiseAddress(address)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  expect(() => c.setAdvertiseAddress(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  expect(c.advertiseAddress).toBe('');
  void c.close();
});

test('IPv6 literals are accepted', () => {
  const c = new Client({ name: 'peer', topic: 'peer_topic', redis: redisUrl, advertise: '[::1]:0' });
  expect(c.advertiseAddress).toBe('[::1]:0');
  c.setAdvertiseAddress('[fe80::1]:4000');
  expect(c.advertiseAddress).toBe('[fe80::1]:4000');
  void c.close();
});
