// The HTTP matcher against request heads from real curl, every prefix, the 16 KiB cap,
// Host header forms, non-HTTP bytes, and random input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type HttpSniff, MAX_HTTP_HEAD, sniffHttp } from '../../../src/sniff/http.js';
import { prefixVerdicts, runClient, startRecorder } from './capture.js';

const CURL = '/usr/bin/curl';
const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n';
const b = (s: string): Buffer => Buffer.from(s, 'latin1');

// The head curl sends for `args`; the recorder answers once the head is complete.
async function curlHead(t: test.TestContext, args: readonly string[]): Promise<Buffer> {
  const recorder = await startRecorder(t, {
    enough: (bytes) => {
      const r = sniffHttp(bytes);
      return r.verdict === 'no' || (r.verdict === 'yes' && r.headersComplete);
    },
    reply: OK,
  });
  runClient(t, CURL, ['-s', '-o', '/dev/null', '--max-time', '4', ...args.map((a) => a.replaceAll('PORT', String(recorder.port)))]);
  return recorder.first;
}

type Yes = Extract<HttpSniff, { verdict: 'yes' }>;
function yes(r: HttpSniff): Yes {
  assert.equal(r.verdict, 'yes', JSON.stringify(r));
  return r as Yes;
}

// Strict prefixes shorter than the request line: more; from there on yes, the head complete
// only with the whole.
function assertPrefixes(whole: Buffer): void {
  const lineEnd = whole.indexOf(0x0a) + 1;
  const verdicts = prefixVerdicts(whole, sniffHttp);
  assert.deepEqual(new Set(verdicts.slice(0, lineEnd)), new Set(['more']));
  for (let n = lineEnd; n < whole.length; n++) {
    const r = yes(sniffHttp(whole.subarray(0, n)));
    assert.equal(r.headersComplete, false, `prefix ${n}`);
  }
}

test('curl GET with a Host header: method, host lower-cased without its port', async (t) => {
  const head = await curlHead(t, ['-H', 'Host: WWW.Example.ORG:8080', 'http://127.0.0.1:PORT/path?q=1']);
  assert.match(head.toString('latin1'), /^GET \/path\?q=1 HTTP\/1\.1\r\n/);
  assert.deepEqual(yes(sniffHttp(head)), { verdict: 'yes', method: 'GET', host: 'www.example.org', headersComplete: true });
  assertPrefixes(head);
});

test('curl to an IPv6 literal: the host keeps its brackets and loses its port', async (t) => {
  // --connect-to sends the connection to the recorder while curl writes Host for the literal.
  const head = await curlHead(t, ['--connect-to', '[2001:db8::1]:8080:127.0.0.1:PORT', 'http://[2001:DB8::1]:8080/v6']);
  assert.match(head.toString('latin1'), /\r\nHost: \[2001:DB8::1\]:8080\r\n/);
  assert.deepEqual(yes(sniffHttp(head)), { verdict: 'yes', method: 'GET', host: '[2001:db8::1]', headersComplete: true });
});

test('curl POST, HEAD and HTTP/1.0 without a Host header', async (t) => {
  const post = await curlHead(t, ['-d', 'a=1', 'http://127.0.0.1:PORT/form']);
  assert.deepEqual(yes(sniffHttp(post)), { verdict: 'yes', method: 'POST', host: '127.0.0.1', headersComplete: true });
  const head = await curlHead(t, ['-I', 'http://127.0.0.1:PORT/']);
  assert.equal(yes(sniffHttp(head)).method, 'HEAD');
  const old = await curlHead(t, ['-0', '-H', 'Host:', 'http://127.0.0.1:PORT/']);
  assert.match(old.toString('latin1'), /^GET \/ HTTP\/1\.0\r\n/);
  assert.deepEqual(yes(sniffHttp(old)), { verdict: 'yes', method: 'GET', headersComplete: true });
});

test('curl --http2-prior-knowledge: the HTTP/2 preface is method PRI', async (t) => {
  const preface = await curlHead(t, ['--http2-prior-knowledge', 'http://127.0.0.1:PORT/']);
  assert.ok(preface.toString('latin1').startsWith('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
  assert.deepEqual(yes(sniffHttp(preface)), { verdict: 'yes', method: 'PRI', headersComplete: true });
  assertPrefixes(b('PRI * HTTP/2.0\r\n\r\n'));
});

test('every method, with CRLF or bare LF line ends', () => {
  for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']) {
    for (const eol of ['\r\n', '\n']) {
      const whole = b(`${method} /x HTTP/1.1${eol}Host: h.example${eol}${eol}`);
      assert.deepEqual(yes(sniffHttp(whole)), { verdict: 'yes', method, host: 'h.example', headersComplete: true });
      assertPrefixes(whole);
    }
  }
  assert.equal(yes(sniffHttp(b('CONNECT example.org:443 HTTP/1.1\r\n'))).method, 'CONNECT');
  assert.equal(yes(sniffHttp(b('OPTIONS * HTTP/1.0\n'))).method, 'OPTIONS');
});

test('not a request line: no, as soon as a byte shows it', () => {
  const cases = [
    'get / HTTP/1.1\r\n', // methods are case-sensitive
    'GETS / HTTP/1.1\r\n',
    'BREW / HTTP/1.1\r\n',
    'GET  HTTP/1.1\r\n', // empty target
    'GET /a\tb HTTP/1.1\r\n',
    'GET / HTTP/2.0\r\n',
    'GET / HTTP/1.x\r\n',
    'GET / HTTP/1.1\rX',
    'GET / HTTP/1.1 \r\n',
    'GET / http/1.1\r\n',
    'PRI * HTTP/1.1\r\n',
    'PRI / HTTP/2.0\r\n',
    'PRI * HTTP/2.0\n', // the preface is exact
    ' GET / HTTP/1.1\r\n',
    'SSH-2.0-OpenSSH_9.2\r\n',
    '\x16\x03\x01\x00\x10',
    '\x05\x01\x00',
  ];
  for (const text of cases) assert.equal(sniffHttp(b(text)).verdict, 'no', JSON.stringify(text));
  assert.equal(sniffHttp(b('GX')).verdict, 'no');
  assert.equal(sniffHttp(b('GET / HTTP/1.2')).verdict, 'more');
  assert.equal(sniffHttp(b('GET / HTTP/3')).verdict, 'no');
  assert.equal(sniffHttp(b('P')).verdict, 'more'); // POST, PUT, PATCH, PRI
  assert.equal(sniffHttp(Buffer.alloc(0)).verdict, 'more');
});

test('Host header forms', () => {
  const host = (value: string): string | undefined => yes(sniffHttp(b(`GET / HTTP/1.1\r\nAccept: */*\r\n${value}\r\n\r\n`))).host;
  assert.equal(host('Host: Example.org'), 'example.org');
  assert.equal(host('HOST:example.org:80'), 'example.org');
  assert.equal(host('host: \t example.org \t'), 'example.org');
  assert.equal(host('Host: [::1]:8080'), '[::1]');
  assert.equal(host('Host: [FE80::1]'), '[fe80::1]');
  assert.equal(host('Host: ::1'), '::1'); // not a valid Host, but not cut at a colon either
  assert.equal(host('Host: [::1'), undefined);
  assert.equal(host('Host:'), undefined);
  assert.equal(host('Host: :80'), undefined);
  assert.equal(host('X-Host: a.example'), undefined);
  assert.equal(host('Host : a.example'), undefined); // no space before the colon (RFC 9112 §5.1)
  assert.equal(host('Host: first.example\r\nHost: second.example'), 'first.example');
  // A host line still arriving is not reported half-read.
  assert.deepEqual(sniffHttp(b('GET / HTTP/1.1\r\nHost: exam')), { verdict: 'yes', method: 'GET', headersComplete: false });
  assert.equal(yes(sniffHttp(b('GET / HTTP/1.1\r\nHost: example.org\r'))).host, undefined);
  assert.equal(yes(sniffHttp(b('GET / HTTP/1.1\r\nHost: example.org\n'))).host, 'example.org');
  // Headers after the end of the head are the body.
  assert.equal(yes(sniffHttp(b('POST / HTTP/1.1\r\n\r\nHost: body.example\r\n'))).host, undefined);
});

test('the 16 KiB cap: an endless head is taken as complete, an endless request line is no', () => {
  const start = 'GET / HTTP/1.1\r\nHost: capped.example\r\n';
  const filler = (n: number): string => 'X-Fill: y\r\n'.repeat(Math.ceil(n / 11)).slice(0, n);
  const under = b(start + filler(MAX_HTTP_HEAD - start.length - 1));
  assert.deepEqual(sniffHttp(under), { verdict: 'yes', method: 'GET', host: 'capped.example', headersComplete: false });
  const at = b(start + filler(MAX_HTTP_HEAD - start.length));
  assert.deepEqual(sniffHttp(at), { verdict: 'yes', method: 'GET', host: 'capped.example', headersComplete: true });
  // A Host header past the cap is not looked for.
  const late = b(`GET / HTTP/1.1\r\n${filler(MAX_HTTP_HEAD)}\r\nHost: late.example\r\n\r\n`);
  assert.deepEqual(sniffHttp(late), { verdict: 'yes', method: 'GET', headersComplete: true });
  const longTarget = (n: number): Buffer => b(`GET /${'a'.repeat(n)}`);
  assert.equal(sniffHttp(longTarget(MAX_HTTP_HEAD - 6)).verdict, 'more');
  assert.equal(sniffHttp(longTarget(MAX_HTTP_HEAD - 5)).verdict, 'no');
  // Blank runs are trimmed by hand, in linear time, whatever their length.
  const blanks = b(`GET / HTTP/1.1\r\nHost:${' '.repeat(MAX_HTTP_HEAD - 40)}a b\r\n\r\n`);
  assert.equal(yes(sniffHttp(blanks)).host, 'a b');
});

// ---- properties -------------------------------------------------------------------------

test('random bytes never throw and give a valid answer', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom('', 'GET ', 'GET / HTTP/1.1\r\n', 'PRI '), (tail, start) => {
      const r = sniffHttp(Buffer.concat([b(start), tail]));
      assert.ok(['yes', 'no', 'more'].includes(r.verdict));
      if (r.verdict === 'yes') assert.equal(typeof r.headersComplete, 'boolean');
    }),
    { numRuns: 500 },
  );
});

const methodArb = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH');
const targetArb = fc.stringMatching(/^\/[!-~]{0,30}$/);
const tokenArb = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,12}$/).filter((n) => n.toLowerCase() !== 'host');
const valueArb = fc.stringMatching(/^[!-~]([ !-~]{0,20}[!-~])?$/);
const hostArb = fc.stringMatching(/^[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}$/);

test('random valid heads: more before the request line ends, yes after, complete at the end', () => {
  fc.assert(
    fc.property(
      methodArb,
      targetArb,
      fc.constantFrom('0', '1'),
      fc.array(fc.tuple(tokenArb, valueArb), { maxLength: 5 }),
      fc.option(fc.tuple(hostArb, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined })), { nil: undefined }),
      fc.nat(5),
      fc.constantFrom('\r\n', '\n'),
      (method, target, minor, headers, host, hostAt, eol) => {
        const lines = headers.map(([n, v]) => `${n}: ${v}`);
        if (host) lines.splice(Math.min(hostAt, lines.length), 0, `Host: ${host[0]}${host[1] === undefined ? '' : `:${host[1]}`}`);
        const whole = b(`${method} ${target} HTTP/1.${minor}${eol}${lines.map((l) => l + eol).join('')}${eol}`);
        const r = yes(sniffHttp(whole));
        assert.deepEqual(r, { verdict: 'yes', method, ...(host ? { host: host[0] } : {}), headersComplete: true });
        assertPrefixes(whole);
      },
    ),
    { numRuns: 200 },
  );
});
