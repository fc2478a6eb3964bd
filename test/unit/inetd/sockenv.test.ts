// Unit tests for `flags sockenv` (src/inetd/sockenv.ts): the pies names (PROTO, SOCKTYPE,
// LOCALIP, …) and the UCSPI TCP* names for IPv4, IPv4-mapped IPv6, IPv6 and unix sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolvedNames, sockenvVariables } from '../../../src/inetd/sockenv.js';

test('IPv4: pies and TCP* names', () => {
  assert.deepEqual(sockenvVariables({ localAddress: '127.0.0.1', localPort: 7000, remoteAddress: '10.1.2.3', remotePort: 54321 }), {
    PROTO: 'tcp',
    SOCKTYPE: 'stream',
    LOCALIP: '127.0.0.1',
    TCPLOCALIP: '127.0.0.1',
    LOCALPORT: '7000',
    TCPLOCALPORT: '7000',
    REMOTEIP: '10.1.2.3',
    TCPREMOTEIP: '10.1.2.3',
    REMOTEPORT: '54321',
    TCPREMOTEPORT: '54321',
  });
});

test('IPv4-mapped IPv6 addresses (dual-stack listener) are shown as IPv4', () => {
  const env = sockenvVariables({ localAddress: '::ffff:127.0.0.1', localPort: 7000, remoteAddress: '::ffff:192.0.2.10', remotePort: 40000 });
  assert.equal(env.LOCALIP, '127.0.0.1');
  assert.equal(env.TCPLOCALIP, '127.0.0.1');
  assert.equal(env.REMOTEIP, '192.0.2.10');
  assert.equal(env.TCPREMOTEIP, '192.0.2.10');
  assert.equal(env.PROTO, 'tcp');
  assert.equal(env.LOCALPORT, '7000');
  assert.equal(env.REMOTEPORT, '40000');
  // Upper case and the fully written-out form too.
  assert.equal(sockenvVariables({ remoteAddress: '::FFFF:10.0.0.1' }).REMOTEIP, '10.0.0.1');
  assert.equal(sockenvVariables({ remoteAddress: '0:0:0:0:0:ffff:a00:1' }).REMOTEIP, '10.0.0.1');
});

test('IPv6 addresses are passed through', () => {
  assert.deepEqual(sockenvVariables({ localAddress: '::1', localPort: 8080, remoteAddress: '2001:db8::7', remotePort: 1 }), {
    PROTO: 'tcp',
    SOCKTYPE: 'stream',
    LOCALIP: '::1',
    TCPLOCALIP: '::1',
    LOCALPORT: '8080',
    TCPLOCALPORT: '8080',
    REMOTEIP: '2001:db8::7',
    TCPREMOTEIP: '2001:db8::7',
    REMOTEPORT: '1',
    TCPREMOTEPORT: '1',
  });
  // Not mapped (::ffff:0:… is SIIT, not IPv4-mapped): left alone.
  assert.equal(sockenvVariables({ remoteAddress: '::ffff:0:a00:1' }).REMOTEIP, '::ffff:0:a00:1');
  assert.equal(sockenvVariables({ remoteAddress: 'fe80::ffff' }).REMOTEIP, 'fe80::ffff');
});

test('unix sockets: PROTO unix and no address variables', () => {
  assert.deepEqual(sockenvVariables({}, '/run/tpies/s.sock'), { PROTO: 'unix', SOCKTYPE: 'stream' });
  // Whatever the socket reports, a unix listener wins.
  const env = sockenvVariables({ localAddress: '127.0.0.1', localPort: 1, remoteAddress: '127.0.0.1', remotePort: 2 }, '/s');
  for (const name of ['LOCALIP', 'TCPLOCALIP', 'REMOTEIP', 'TCPREMOTEIP', 'LOCALPORT', 'REMOTEPORT']) assert.equal(env[name], undefined);
  assert.deepEqual(env, { PROTO: 'unix', SOCKTYPE: 'stream' });
});

test('unknown ends are left out rather than set to "undefined"', () => {
  assert.deepEqual(sockenvVariables({}), { PROTO: 'tcp', SOCKTYPE: 'stream' });
  assert.deepEqual(sockenvVariables({ localAddress: '127.0.0.1', localPort: undefined, remoteAddress: undefined, remotePort: 9 }), {
    PROTO: 'tcp',
    SOCKTYPE: 'stream',
    LOCALIP: '127.0.0.1',
    TCPLOCALIP: '127.0.0.1',
    REMOTEPORT: '9',
    TCPREMOTEPORT: '9',
  });
  // Port 0 is a value, not "missing".
  assert.equal(sockenvVariables({ localPort: 0 }).LOCALPORT, '0');
});

test('every value is a string (ready for a child environment)', () => {
  const env = sockenvVariables({ localAddress: '127.0.0.1', localPort: 1, remoteAddress: '::1', remotePort: 65535 });
  for (const [k, v] of Object.entries(env)) assert.equal(typeof v, 'string', k);
});

// flags resolve: names come from getnameinfo (so /etc/hosts answers for loopback).
test('resolvedNames gives LOCALHOST and REMOTEHOST for loopback addresses', async () => {
  const names = await resolvedNames({ LOCALIP: '127.0.0.1', REMOTEIP: '127.0.0.1' });
  assert.equal(typeof names.REMOTEHOST, 'string');
  assert.ok((names.REMOTEHOST ?? '').length > 0);
  assert.equal(names.LOCALHOST, names.REMOTEHOST);
  assert.equal(names.TCPREMOTEHOST, names.REMOTEHOST);
});
