// The SSH and SOCKS5 matchers against what real clients send first (OpenSSH, curl as a
// SOCKS5 client), every prefix, and random input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sniffSocks5 } from '../../../src/sniff/socks5.js';
import { sniffSsh } from '../../../src/sniff/ssh.js';
import { sniffHttp } from '../../../src/sniff/http.js';
import { sniffTls } from '../../../src/sniff/tls.js';
import { prefixVerdicts, runClient, startRecorder } from './capture.js';

const SSH = '/usr/bin/ssh';
const CURL = '/usr/bin/curl';

// OpenSSH's client writes its identification line as soon as it is connected, without waiting
// for the server's (kex_exchange_identification() in kex.c sends first, then reads). This test
// proves it: the recorder never sends a byte, yet gets `SSH-2.0-OpenSSH_…\r\n`. So a sniffer
// sees SSH on the client's first bytes even though the protocol lets the server speak first.
test('OpenSSH sends SSH-2.0-… before hearing from the server', async (t) => {
  const recorder = await startRecorder(t, { enough: (b) => b.includes(0x0a) });
  runClient(t, SSH, [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'ConnectTimeout=4',
    '-p', String(recorder.port),
    '127.0.0.1',
  ]);
  const bytes = await recorder.first;
  assert.match(bytes.toString('latin1'), /^SSH-2\.0-OpenSSH_[^\r\n]*\r\n$/);
  assert.equal(sniffSsh(bytes), 'yes');
  assert.deepEqual(new Set(prefixVerdicts(bytes.subarray(0, 4), sniffSsh)), new Set(['more']));
  for (const other of [sniffHttp(bytes).verdict, sniffTls(bytes).verdict, sniffSocks5(bytes)]) assert.equal(other, 'no');
});

test('SSH: the four bytes decide', () => {
  const s = (text: string): string => sniffSsh(Buffer.from(text, 'latin1'));
  assert.equal(s(''), 'more');
  assert.equal(s('S'), 'more');
  assert.equal(s('SSH'), 'more');
  assert.equal(s('SSH-'), 'yes');
  assert.equal(s('SSH-1.99-old\r\n'), 'yes');
  assert.equal(s('ssh-2.0-x'), 'no');
  assert.equal(s('SSX'), 'no');
  assert.equal(s('GET / HTTP/1.1\r\n'), 'no');
  assert.equal(s('\x16\x03\x01'), 'no');
});

async function socksGreeting(t: test.TestContext, extra: readonly string[]): Promise<Buffer> {
  const recorder = await startRecorder(t, { enough: (b) => sniffSocks5(b) !== 'more' });
  runClient(t, CURL, ['-s', '-o', '/dev/null', '--max-time', '4', '--socks5-hostname', `127.0.0.1:${recorder.port}`, ...extra, 'http://sniff.invalid/']);
  return recorder.first;
}

test('curl as a SOCKS5 client: the greeting, with and without user/password', async (t) => {
  const plain = await socksGreeting(t, []);
  assert.equal(plain[0], 5);
  assert.equal(plain.length, 2 + (plain[1] ?? 0));
  assert.equal(sniffSocks5(plain), 'yes');
  assert.deepEqual(new Set(prefixVerdicts(plain, sniffSocks5)), new Set(['more']));
  const auth = await socksGreeting(t, ['--proxy-user', 'u:p']);
  assert.ok(auth.subarray(2).includes(0x02), 'offers username/password');
  assert.equal(sniffSocks5(auth), 'yes');
  for (const other of [sniffHttp(plain).verdict, sniffTls(plain).verdict, sniffSsh(plain)]) assert.equal(other, 'no');
});

test('SOCKS5: version, method count, method values', () => {
  const s = (...bytes: number[]): string => sniffSocks5(Buffer.from(bytes));
  assert.equal(s(), 'more');
  assert.equal(s(5), 'more');
  assert.equal(s(5, 0), 'no'); // no methods offered
  assert.equal(s(5, 3, 0, 2), 'more');
  assert.equal(s(5, 3, 0, 2, 0x80), 'yes');
  assert.equal(s(5, 1, 0x09), 'yes');
  assert.equal(s(5, 1, 0xfe), 'yes');
  assert.equal(s(5, 1, 0x0a), 'no');
  assert.equal(s(5, 1, 0x7f), 'no');
  assert.equal(s(5, 1, 0xff), 'no');
  assert.equal(s(5, 3, 0, 0xff), 'no'); // a bad method is known before the rest arrives
  assert.equal(s(4, 1, 0), 'no'); // SOCKS4
  assert.equal(s(5, 1, 0, 5, 1, 0, 3), 'yes'); // a pipelined request after the greeting
});

test('random bytes never throw; random valid greetings: prefixes more, whole yes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
      for (const v of [sniffSsh(Buffer.from(bytes)), sniffSocks5(Buffer.from(bytes))]) assert.ok(['yes', 'no', 'more'].includes(v));
    }),
    { numRuns: 500 },
  );
  const method = fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0x80, max: 0xfe }));
  fc.assert(
    fc.property(fc.array(method, { minLength: 1, maxLength: 255 }), (methods) => {
      const whole = Buffer.from([5, methods.length, ...methods]);
      assert.equal(sniffSocks5(whole), 'yes');
      assert.deepEqual(new Set(prefixVerdicts(whole, sniffSocks5)), new Set(['more']));
    }),
    { numRuns: 200 },
  );
});
