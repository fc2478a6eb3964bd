// The TLS ClientHello matcher against hellos from real clients (Node's TLS, openssl
// s_client), re-framed and hand-built hellos, every prefix, malformed ones, and random bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import fc from 'fast-check';
import { MAX_CLIENT_HELLO, type TlsSniff, sniffTls } from '../../../src/sniff/tls.js';
import { prefixVerdicts, runClient, startRecorder } from './capture.js';
import {
  alpnExtension,
  clientHello,
  extension,
  frame,
  handshake,
  helloBody,
  record,
  sniExtension,
  unframe,
  vec16,
} from './tls-hello.js';

const OPENSSL = '/usr/bin/openssl';
const helloArrived = (b: Buffer): boolean => sniffTls(b).verdict !== 'more';

// A real hello from Node's TLS client; the recorder closes once the hello is whole.
async function nodeHello(t: test.TestContext, options: { servername?: string; ALPNProtocols?: string[] }): Promise<Buffer> {
  const recorder = await startRecorder(t, { enough: helloArrived });
  const socket = connect({ host: '127.0.0.1', port: recorder.port, rejectUnauthorized: false, ...options });
  socket.on('error', () => {});
  t.after(() => socket.destroy());
  return recorder.first;
}

async function opensslHello(t: test.TestContext, args: readonly string[]): Promise<Buffer> {
  const recorder = await startRecorder(t, { enough: helloArrived });
  runClient(t, OPENSSL, ['s_client', '-connect', `127.0.0.1:${recorder.port}`, ...args]);
  return recorder.first;
}

function yes(r: TlsSniff): { sni?: string; alpn: readonly string[] } {
  assert.equal(r.verdict, 'yes', JSON.stringify(r));
  if (r.verdict !== 'yes') throw new Error('unreachable');
  return { ...(r.sni === undefined ? {} : { sni: r.sni }), alpn: r.alpn };
}

function assertEveryPrefixMore(whole: Buffer, step = 1): void {
  const verdicts = prefixVerdicts(whole, sniffTls, step);
  assert.deepEqual(new Set(verdicts), new Set(['more']));
}

test('Node TLS client: the server name (lower-cased) and the ALPN list', async (t) => {
  const bytes = await nodeHello(t, { servername: 'WWW.Example.ORG', ALPNProtocols: ['h2', 'http/1.1'] });
  assert.deepEqual(yes(sniffTls(bytes)), { sni: 'www.example.org', alpn: ['h2', 'http/1.1'] });
  assertEveryPrefixMore(bytes);
});

test('Node TLS client without a server name or ALPN: no sni, empty alpn', async (t) => {
  // Node sends no SNI when the servername is empty (and never for an IP address).
  const bytes = await nodeHello(t, { servername: '' });
  assert.deepEqual(yes(sniffTls(bytes)), { alpn: [] });
});

test('openssl s_client: -servername and -alpn', async (t) => {
  const bytes = await opensslHello(t, ['-servername', 'Mail.Example.net', '-alpn', 'h2,http/1.1']);
  assert.deepEqual(yes(sniffTls(bytes)), { sni: 'mail.example.net', alpn: ['h2', 'http/1.1'] });
  assertEveryPrefixMore(bytes);
});

test('openssl s_client -noservername, TLS 1.2 only', async (t) => {
  const bytes = await opensslHello(t, ['-noservername', '-tls1_2']);
  assert.deepEqual(yes(sniffTls(bytes)), { alpn: [] });
});

test('a real hello over two records (a 24 KiB ALPN list) is reassembled', async (t) => {
  const long = Array.from({ length: 120 }, (_, i) => `${'p'.repeat(200)}${i}`);
  const bytes = await nodeHello(t, { servername: 'big.example', ALPNProtocols: ['h2', ...long] });
  assert.ok(unframe(bytes).records >= 2, 'OpenSSL split the hello over records');
  const offer = yes(sniffTls(bytes));
  assert.equal(offer.sni, 'big.example');
  assert.deepEqual(offer.alpn, ['h2', ...long]);
  // Every prefix would be 25k parses of 25 KiB: every 61st, and around each record boundary.
  assertEveryPrefixMore(bytes, 61);
  const boundary = 5 + 16384;
  for (let n = boundary - 3; n <= boundary + 6; n++) assert.equal(sniffTls(bytes.subarray(0, n)).verdict, 'more', `prefix ${n}`);
});

test('a real hello re-framed into tiny records reads the same', async (t) => {
  const bytes = await nodeHello(t, { servername: 'split.example', ALPNProtocols: ['h2'] });
  const { handshake: message, records } = unframe(bytes);
  assert.equal(records, 1);
  for (const sizes of [[1], [3], [4], [100], [2, 1, 500]]) {
    const reframed = frame(message, sizes);
    assert.deepEqual(yes(sniffTls(reframed)), { sni: 'split.example', alpn: ['h2'] }, `sizes ${sizes.join(',')}`);
  }
  assertEveryPrefixMore(frame(message, [7]));
});

test('bytes after the hello (early data, a next record) do not change the answer', () => {
  const hello = frame(clientHello({ sni: 'a.example', alpn: ['h2'] }), [50]);
  const after = Buffer.concat([hello, record(Buffer.from('early'), 0x17), Buffer.from([0xff, 0xff])]);
  assert.deepEqual(yes(sniffTls(after)), { sni: 'a.example', alpn: ['h2'] });
  // The record in which the hello ends may carry the next handshake bytes too.
  const message = Buffer.concat([clientHello({ sni: 'b.example' }), Buffer.from([0x0b, 0, 0])]);
  assert.deepEqual(yes(sniffTls(frame(message))), { sni: 'b.example', alpn: [] });
});

test('a hello without extensions is a hello', () => {
  const whole = frame(clientHello({ noExtensions: true }));
  assert.deepEqual(yes(sniffTls(whole)), { alpn: [] });
  assertEveryPrefixMore(whole);
});

test('SNI entries of other name types are passed over', () => {
  const list = Buffer.concat([Buffer.from([1]), vec16(Buffer.from('other')), Buffer.from([0]), vec16(Buffer.from('Host.Example'))]);
  const hello = handshake(helloBody(extension(0, vec16(list))));
  assert.deepEqual(yes(sniffTls(frame(hello))), { sni: 'host.example', alpn: [] });
});

// ---- not TLS, or malformed --------------------------------------------------------------

const good = frame(clientHello({ sni: 'ok.example', alpn: ['h2'] }));
const withByte = (at: number, value: number): Buffer => {
  const b = Buffer.from(good);
  b[at] = value;
  return b;
};

test('the record header: content type, version, fragment length', () => {
  assert.equal(sniffTls(good).verdict, 'yes');
  assert.equal(sniffTls(withByte(0, 0x17)).verdict, 'no');
  assert.equal(sniffTls(withByte(1, 2)).verdict, 'no');
  assert.equal(sniffTls(withByte(2, 5)).verdict, 'no');
  assert.equal(sniffTls(Buffer.concat([Buffer.from([0x16, 3, 1, 0x40, 1]), Buffer.alloc(20)])).verdict, 'no'); // 16385
  assert.equal(sniffTls(Buffer.from([0x16, 3, 1, 0, 0])).verdict, 'no'); // an empty fragment
  // Each shows at its first byte, before the rest arrives.
  assert.equal(sniffTls(Buffer.from([0x17])).verdict, 'no');
  assert.equal(sniffTls(Buffer.from([0x16, 4])).verdict, 'no');
  assert.equal(sniffTls(Buffer.from([0x16, 3, 9])).verdict, 'no');
  assert.equal(sniffTls(Buffer.from([0x16, 3, 1, 0x41])).verdict, 'no');
  assert.equal(sniffTls(Buffer.from([0x16, 3, 0, 0x40])).verdict, 'more'); // SSL 3.0 record, 16384 possible
});

test('a record of another type in the middle of the hello is no', () => {
  const message = clientHello({ sni: 'x.example' });
  const first = record(message.subarray(0, 20));
  const rest = record(message.subarray(20));
  assert.equal(sniffTls(Buffer.concat([first, rest])).verdict, 'yes');
  assert.equal(sniffTls(Buffer.concat([first, record(Buffer.from([1]), 0x15), rest])).verdict, 'no');
  assert.equal(sniffTls(Buffer.concat([first, Buffer.from([0x17])])).verdict, 'no');
});

test('the handshake header: only a ClientHello, at most 64 KiB', () => {
  assert.equal(sniffTls(record(Buffer.from([2]))).verdict, 'no'); // ServerHello, known at its type byte
  assert.equal(sniffTls(record(Buffer.from([1, 0, 0]))).verdict, 'more');
  const header = (length: number): Buffer => record(Buffer.from([1, length >> 16, (length >> 8) & 0xff, length & 0xff]));
  assert.equal(sniffTls(header(MAX_CLIENT_HELLO)).verdict, 'more');
  assert.equal(sniffTls(header(MAX_CLIENT_HELLO + 1)).verdict, 'no');
  assert.equal(sniffTls(record(Buffer.from([1, 2]))).verdict, 'no'); // ≥ 128 KiB from its high byte
  // A hello of exactly the cap, over five records, is read.
  const padding = MAX_CLIENT_HELLO - helloBody(Buffer.concat([sniExtension('cap.example'), extension(21, Buffer.alloc(0))])).length;
  const capped = handshake(helloBody(Buffer.concat([sniExtension('cap.example'), extension(21, Buffer.alloc(padding))])));
  assert.equal(capped.length, 4 + MAX_CLIENT_HELLO);
  assert.deepEqual(yes(sniffTls(frame(capped))), { sni: 'cap.example', alpn: [] });
});

test('malformed hellos are no, as soon as their bytes show it', () => {
  const cases: Record<string, Buffer> = {
    'empty body': handshake(Buffer.alloc(0)),
    'legacy version major 2': handshake(Buffer.concat([Buffer.from([2, 0]), helloBody(undefined).subarray(2)])),
    'session id of 33 bytes': clientHello({ sessionId: Buffer.alloc(33) }),
    'no cipher suites': clientHello({ suites: [] }),
    'trailing bytes after the extensions': handshake(Buffer.concat([helloBody(sniExtension('a.b')), Buffer.from([0])])),
    'an extension longer than the block': handshake(helloBody(Buffer.from([0, 21, 0, 9, 0]))),
    'a repeated extension': clientHello({ extensions: [[21, Buffer.alloc(1)], [21, Buffer.alloc(2)]] }),
    'two host names': handshake(helloBody(extension(0, vec16(Buffer.concat([Buffer.from([0]), vec16(Buffer.from('a')), Buffer.from([0]), vec16(Buffer.from('b'))]))))),
    'an empty server name list': handshake(helloBody(extension(0, vec16(Buffer.alloc(0))))),
    'an empty host name': clientHello({ sni: '' }),
    'a space in the host name': clientHello({ sni: 'a b.example' }),
    'a NUL in the host name': clientHello({ sni: 'a\0.example' }),
    'a byte after the server name list': handshake(helloBody(extension(0, Buffer.concat([vec16(Buffer.concat([Buffer.from([0]), vec16(Buffer.from('a'))])), Buffer.from([0])])))),
    'an empty ALPN list': handshake(helloBody(extension(16, vec16(Buffer.alloc(0))))),
    'an empty protocol name': clientHello({ alpn: ['h2', ''] }),
    'a protocol name past its list': handshake(helloBody(extension(16, vec16(Buffer.from([5, 0x68, 0x32]))))),
  };
  for (const [name, message] of Object.entries(cases)) {
    const bytes = frame(message);
    assert.equal(sniffTls(bytes).verdict, 'no', name);
  }
  // Known early: a bad host name byte before the rest of the name has come.
  const bad = frame(clientHello({ sni: `a\x01${'x'.repeat(200)}.example` }));
  const at = bad.indexOf('a\x01');
  assert.equal(sniffTls(bad.subarray(0, at + 2)).verdict, 'no');
  assert.equal(sniffTls(bad.subarray(0, at + 1)).verdict, 'more');
});

test('other protocols are not TLS', () => {
  for (const text of ['GET / HTTP/1.1\r\n\r\n', 'SSH-2.0-x\r\n', '\x05\x01\x00', 'PRI * HTTP/2.0\r\n']) {
    assert.equal(sniffTls(Buffer.from(text, 'latin1')).verdict, 'no', JSON.stringify(text));
  }
  assert.equal(sniffTls(Buffer.alloc(0)).verdict, 'more');
});

// ---- properties -------------------------------------------------------------------------

const VERDICTS = new Set(['yes', 'no', 'more']);

test('random bytes, and random bytes behind a handshake record header, never throw', () => {
  const check = (bytes: Uint8Array): void => {
    const r = sniffTls(Buffer.from(bytes));
    assert.ok(VERDICTS.has(r.verdict));
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check), { numRuns: 300 });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 0, max: 0x4000 }), (tail, length) =>
      check(Buffer.concat([Buffer.from([0x16, 3, 1, length >> 8, length & 0xff, 1, 0, length >> 8, length & 0xff]), tail])),
    ),
    { numRuns: 300 },
  );
});

test('a valid hello with one byte changed never throws', () => {
  fc.assert(
    fc.property(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), (at, value) => {
      assert.ok(VERDICTS.has(sniffTls(withByte(at, value)).verdict));
    }),
    { numRuns: 500 },
  );
});

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const hostArb = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));
const protocolArb = fc.stringMatching(/^[\x21-\x7e]{1,12}$/);
const helloArb = fc.record({
  sni: fc.option(hostArb, { nil: undefined }),
  alpn: fc.option(fc.array(protocolArb, { minLength: 1, maxLength: 4 }), { nil: undefined }),
  sessionId: fc.uint8Array({ maxLength: 32 }).map((a) => Buffer.from(a)),
  suites: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 20 }),
  extensions: fc.uniqueArray(
    fc.tuple(fc.integer({ min: 17, max: 0xffff }), fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a))),
    { selector: ([type]) => type, maxLength: 5 },
  ),
  sizes: fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 4 }),
});

test('random valid hellos in random records: every prefix more, the whole yes with its sni and alpn', () => {
  fc.assert(
    fc.property(helloArb, ({ sizes, sni, alpn, ...rest }) => {
      const parts = { ...rest, ...(sni === undefined ? {} : { sni }), ...(alpn === undefined ? {} : { alpn }) };
      const bytes = frame(clientHello(parts), sizes);
      const whole = sniffTls(bytes);
      assert.deepEqual(yes(whole), { ...(parts.sni === undefined ? {} : { sni: parts.sni }), alpn: parts.alpn ?? [] });
      assertEveryPrefixMore(bytes);
    }),
    { numRuns: 100 },
  );
});

test('the hello matches what was built, whatever the extension order', () => {
  const a = clientHello({ extensions: [[16, alpnExtension(['x']).subarray(4)], [0, sniExtension('late.example').subarray(4)]] });
  assert.deepEqual(yes(sniffTls(frame(a))), { sni: 'late.example', alpn: ['x'] });
});
