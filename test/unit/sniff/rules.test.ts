// The sniffing rules engine (src/sniff/rules.ts), pure: which subordinate of a TCPMUX master a
// connection goes to from the bytes seen so far. RFC 1078 lines first, then `match` rules in
// config order (a `more` holds up later rules), `timeout` for a silent client, `default` last;
// real ClientHellos from Node's TLS client; decisions stable as bytes arrive (fast-check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import fc from 'fast-check';
import { type Component, type Flag, type MatchRule, DEFAULT_RESPAWN_POLICY } from '../../../src/config/model.js';
import { type Decision, type SniffTable, compileSniffTable, decide, sniffs } from '../../../src/sniff/rules.js';
import { sniffTls } from '../../../src/sniff/tls.js';
import { classifyServiceName, createLineReader } from '../../../src/tcpmux/protocol.js';
import { startRecorder } from './capture.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const MAX_LINE = 512;
const MORE = { final: false, timedOut: false } as const;
const FINAL = { final: true, timedOut: false } as const;
const TIMED_OUT = { final: true, timedOut: true } as const;

// No helper in test/unit builds a Component (states.test.ts casts a partial one): this fills
// every required field so the table sees exactly what config/build would give it.
function component(tag: string, match: readonly MatchRule[] = [], extra: { service?: string; flags?: readonly Flag[] } = {}): Component {
  return {
    tag,
    location: { file: 'rules.test.conf', line: 1, column: 1 },
    mode: 'inetd',
    flags: new Set<Flag>(extra.flags ?? []),
    prerequisites: [],
    dependents: [],
    socketType: 'stream',
    returnCodes: [],
    respawn: DEFAULT_RESPAWN_POLICY,
    shutdownTimeoutMs: 5_000,
    statementLocations: new Map(),
    ...(extra.service === undefined ? {} : { service: extra.service }),
    ...(match.length === 0 ? {} : { match }),
  };
}

const table = (subs: readonly Component[], maxLineBytes = MAX_LINE): SniffTable => compileSniffTable(subs, maxLineBytes);

// A decision as one comparable word: `more`, `tcpmux:6`, `rule:tag/tls`, `none`, `none:line`.
function show(d: Decision): string {
  switch (d.kind) {
    case 'more':
      return 'more';
    case 'tcpmux':
      return `tcpmux:${d.lineBytes}`;
    case 'rule':
      return `rule:${d.component.tag}/${d.match}`;
    case 'none':
      return d.line ? 'none:line' : 'none';
  }
}

// A copy, so a look past the end finds nothing rather than the rest of a larger buffer.
const at = (t: SniffTable, bytes: Buffer | string, state: { final: boolean; timedOut: boolean } = MORE): string =>
  show(decide(t, Buffer.from(typeof bytes === 'string' ? b(bytes) : bytes), state));

// ---- RFC 1078 lines -----------------------------------------------------------------------

test('a line naming a service or help wins over every rule, in any case, CRLF or LF', () => {
  const t = table([
    component('grab-prefix', [{ kind: 'prefix', text: 'e' }, { kind: 'prefix', text: 'h' }, { kind: 'prefix', text: 'M' }]),
    component('grab-regex', [{ kind: 'regex', source: '.' }, { kind: 'http' }]),
    component('echo', [], { service: 'echo' }),
    component('mixed', [], { service: 'MiXed-Name' }),
    component('fallback', [{ kind: 'default' }, { kind: 'timeout' }]),
  ]);
  for (const state of [MORE, FINAL, TIMED_OUT]) {
    assert.equal(at(t, 'echo\r\n', state), 'tcpmux:6');
    assert.equal(at(t, 'ECHO\n', state), 'tcpmux:5');
    assert.equal(at(t, 'eChO\r\n', state), 'tcpmux:6');
    assert.equal(at(t, 'help\r\n', state), 'tcpmux:6');
    assert.equal(at(t, 'HeLp\n', state), 'tcpmux:5');
    assert.equal(at(t, 'mixed-name\r\n', state), 'tcpmux:12');
    assert.equal(at(t, 'MIXED-NAME\n', state), 'tcpmux:11');
  }
  // lineBytes counts the terminator only: what follows is the client's stream, left queued.
  assert.equal(at(t, 'echo\r\nGET / HTTP/1.1\r\n\r\n'), 'tcpmux:6');
  assert.equal(at(t, 'help\nmore lines\n'), 'tcpmux:5');
  assert.equal(at(t, Buffer.concat([b('echo\r\n'), Buffer.from([0x16, 3, 1, 0, 5])])), 'tcpmux:6');
});

test('help is a request even on a master whose subordinates have no service names', () => {
  const t = table([component('s', [{ kind: 'ssh' }])]);
  assert.equal(at(t, 'HELP\r\n'), 'tcpmux:6');
  assert.equal(at(t, 'he'), 'more');
});

test('a line that can still become a service name holds the decision; once it cannot, the rules decide', () => {
  const t = table([
    component('web', [{ kind: 'prefix', text: 'GET ' }, { kind: 'prefix', text: 'ec' }]),
    component('echo', [], { service: 'echo' }),
    component('fb', [{ kind: 'default' }]),
  ]);
  for (const partial of ['e', 'ec', 'ECH', 'echo', 'EcHo\r', 'H', 'hElP']) assert.equal(at(t, partial), 'more', partial);
  // No longer a prefix of `echo\r`: the prefix rule that matched all along now decides.
  assert.equal(at(t, 'ech0'), 'rule:web/prefix');
  assert.equal(at(t, 'echo '), 'rule:web/prefix');
  assert.equal(at(t, 'echo\rx'), 'rule:web/prefix');
  // `GET ` cannot become `echo` or `help`.
  assert.equal(at(t, 'G'), 'more'); // the prefix rule, partially matched
  assert.equal(at(t, 'GET '), 'rule:web/prefix');
  // When no more bytes will come, a partial name is no line: the rules decide.
  assert.equal(at(t, 'ec', FINAL), 'rule:web/prefix');
  assert.equal(at(t, 'echo\r', FINAL), 'rule:web/prefix');
  assert.equal(at(t, 'he', FINAL), 'rule:fb/default');
  assert.equal(at(t, 'hex'), 'rule:fb/default');
});

test('a service named like a rule prefix holds until the line ends or cannot', () => {
  const t = table([component('web', [{ kind: 'http' }]), component('get', [], { service: 'get' })]);
  assert.equal(at(t, 'GET'), 'more');
  assert.equal(at(t, 'GET\r\n'), 'tcpmux:5');
  assert.equal(at(t, 'GET / HTTP/1.1\r\n'), 'rule:web/http');
});

test('the line cap: a line longer than tcpmux-line-max names nothing', () => {
  const t = table([component('echo', [], { service: 'echo' }), component('s', [{ kind: 'ssh' }])], 5);
  assert.equal(at(t, 'echo\n'), 'tcpmux:5'); // exactly the cap, terminator included
  assert.equal(at(t, 'ech'), 'more');
  assert.equal(at(t, 'echo\r\n'), 'none:line'); // 6 bytes: past the cap, a line all the same
  assert.equal(at(t, 'echo\r'), 'none:line'); // the LF could only land past the cap
});

test('a complete line naming no service goes to the rules; with none matching, none with line', () => {
  const t = table([component('echo', [], { service: 'echo' }), component('p', [{ kind: 'prefix', text: 'nos' }])]);
  assert.equal(at(t, 'nosuch\r\n'), 'rule:p/prefix');
  const bare = table([component('echo', [], { service: 'echo' }), component('s', [{ kind: 'ssh' }])]);
  for (const line of ['nosuch\r\n', 'nosuch\n', 'echo \r\n', ' echo\r\n', 'echoo\r\n', '\r\n', '\n', 'e\r\n']) {
    assert.equal(at(bare, line), 'none:line', JSON.stringify(line));
    assert.equal(at(bare, line, FINAL), 'none:line', JSON.stringify(line));
  }
  // Binary bytes without a line: none, at once.
  assert.equal(at(bare, Buffer.from([0x16, 3, 1])), 'none');
  assert.equal(at(bare, Buffer.from([0, 1, 2]), FINAL), 'none');
});

test('a miss is a line (answered with -) whatever the segments: text is held until it ends, binary is not', () => {
  const t = table([component('s', [{ kind: 'ssh' }]), component('echo', [], { service: 'echo' })], 16);
  // The same line, whole or cut: the first pieces could still end as a line, so they wait.
  for (const piece of ['n', 'nosu', 'nosuch', 'nosuch\r', 'caf\xe9']) assert.equal(at(t, piece), 'more', JSON.stringify(piece));
  assert.equal(at(t, 'nosuch\r\n'), 'none:line');
  assert.equal(at(t, 'nosuch', FINAL), 'none'); // EOF or timeout before the LF: no request, no reply
  assert.equal(at(t, 'caf\xe9\r\n'), 'none:line'); // non-ASCII names are misses like any other
  // Text reaching the cap is refused as the plain reader refuses a too-long line.
  assert.equal(at(t, 'x'.repeat(16)), 'none:line');
  assert.equal(at(t, `${'x'.repeat(15)}\r`), 'none:line');
  assert.equal(at(t, `${'x'.repeat(20)}\n`), 'none:line');
  // Control bytes (a CR only as CRLF) make it binary at once, even with an LF later on.
  for (const bin of ['\x16\x03\x01\n', 'ab\x00cd\r\n', 'ab\rcd\r\n', '\x05\x01\x00', 'a\tb\n', 'x\x7f\n']) {
    assert.equal(at(t, bin), 'none', JSON.stringify(bin));
    assert.equal(at(t, bin.slice(0, bin.search(/[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]|\r[^\n]/) + 2)), 'none', JSON.stringify(bin));
  }
});

// ---- rule order ---------------------------------------------------------------------------

test('rules are tried in config order; a rule answering more holds up the later ones unless final', () => {
  const longFirst = table([component('ab', [{ kind: 'prefix', text: 'ab' }]), component('a', [{ kind: 'prefix', text: 'a' }])]);
  assert.equal(at(longFirst, 'a'), 'more');
  assert.equal(at(longFirst, 'a', FINAL), 'rule:a/prefix');
  assert.equal(at(longFirst, 'ab'), 'rule:ab/prefix');
  assert.equal(at(longFirst, 'ax'), 'rule:a/prefix');
  const shortFirst = table([component('a', [{ kind: 'prefix', text: 'a' }]), component('ab', [{ kind: 'prefix', text: 'ab' }])]);
  assert.equal(at(shortFirst, 'ab'), 'rule:a/prefix');

  // Rules of one component count in their written order too, before the next component's.
  const within = table([component('x', [{ kind: 'socks5' }, { kind: 'ssh' }]), component('y', [{ kind: 'prefix', text: 'SSH-' }])]);
  assert.equal(at(within, 'SSH-2.0-x\r\n'), 'rule:x/ssh');
  assert.equal(at(within, Buffer.from([5])), 'more');
  assert.equal(at(within, Buffer.from([5, 1, 0])), 'rule:x/socks5');

  // A TLS rule still reading the hello holds a regex that would match already.
  const tlsFirst = table([component('tls', [{ kind: 'tls' }]), component('rx', [{ kind: 'regex', source: '^\\x16' }])]);
  assert.equal(at(tlsFirst, Buffer.from([0x16, 3, 1])), 'more');
  assert.equal(at(tlsFirst, Buffer.from([0x16, 3, 1]), FINAL), 'rule:rx/regex');
  // A rule answering no holds nothing up.
  const noFirst = table([component('s', [{ kind: 'ssh' }]), component('g', [{ kind: 'prefix', text: 'GET' }])]);
  assert.equal(at(noFirst, 'GET'), 'rule:g/prefix');
});

// ---- each kind ----------------------------------------------------------------------------

test('prefix: partial is more, a mismatch no, the whole yes; compared byte for byte (latin1)', () => {
  const t = table([component('p', [{ kind: 'prefix', text: 'PING\r\n' }])]);
  assert.equal(at(t, 'PI'), 'more');
  assert.equal(at(t, 'PING\r'), 'more');
  assert.equal(at(t, 'PING\r\n'), 'rule:p/prefix');
  assert.equal(at(t, 'PING\r\nand more'), 'rule:p/prefix');
  assert.equal(at(t, 'ping\r\n'), 'none:line'); // case matters
  assert.equal(at(t, 'PX\r\n'), 'none:line');
  assert.equal(at(t, 'PX', FINAL), 'none');
  const binary = table([component('bin', [{ kind: 'prefix', text: '\x16\x03\xff' }])]);
  assert.equal(at(binary, Buffer.from([0x16, 0x03])), 'more');
  assert.equal(at(binary, Buffer.from([0x16, 0x03, 0xff, 0])), 'rule:bin/prefix');
  assert.equal(at(binary, Buffer.from([0x16, 0x03, 0xc3, 0xbf])), 'none'); // ÿ as UTF-8 is not the byte 0xff
});

test('regex: runs on the bytes as latin1, so \\x16 is the byte 0x16; it judges what has arrived', () => {
  const t = table([component('rx', [{ kind: 'regex', source: '^\\x16\\x03[\\x00-\\x03]' }])]);
  assert.equal(at(t, Buffer.from([0x16, 0x03, 0x01, 0x02])), 'rule:rx/regex');
  assert.equal(at(t, Buffer.from([0x16, 0x03, 0x04])), 'none');
  assert.equal(at(t, Buffer.from([0x17, 0x03, 0x01])), 'none');
  const high = table([component('hi', [{ kind: 'regex', source: '^\\xff\\xfe.\\x80$' }])]);
  assert.equal(at(high, Buffer.from([0xff, 0xfe, 0x00, 0x80])), 'rule:hi/regex');
  assert.equal(at(high, Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x00])), 'none');
  // Case-sensitive, no flags.
  const word = table([component('w', [{ kind: 'regex', source: 'ping' }]), component('d', [{ kind: 'default' }])]);
  assert.equal(at(word, 'xx ping'), 'rule:w/regex');
  assert.equal(at(word, 'xx PING'), 'rule:d/default');
  // A regex cannot say whether more bytes would match: not matching yet, it holds nothing up.
  const later = table([component('rx', [{ kind: 'regex', source: 'HTTP/1\\.1' }]), component('p', [{ kind: 'prefix', text: 'GET' }])]);
  assert.equal(at(later, 'GET / HT'), 'rule:p/prefix');
});

test('ssh: SSH- decides, whatever the version', () => {
  const t = table([component('s', [{ kind: 'ssh' }])]);
  assert.equal(at(t, 'SSH'), 'more');
  assert.equal(at(t, 'SSH-'), 'rule:s/ssh');
  assert.equal(at(t, 'SSH-2.0-OpenSSH_9.6\r\n'), 'rule:s/ssh');
  assert.equal(at(t, 'SSH-1.99-x\r\n'), 'rule:s/ssh');
  assert.equal(at(t, 'SSX-', FINAL), 'none');
  assert.equal(at(t, 'ssh-2.0-x\r\n'), 'none:line');
  // A service named ssh holds while the line could still be `ssh`.
  const named = table([component('s', [{ kind: 'ssh' }], { service: 'ssh' })]);
  assert.equal(at(named, 'SSH'), 'more');
  assert.equal(at(named, 'SSH\r\n'), 'tcpmux:5');
  assert.equal(at(named, 'SSH-'), 'rule:s/ssh');
});

test('socks5: a whole greeting of known methods', () => {
  const t = table([component('k', [{ kind: 'socks5' }])]);
  assert.equal(at(t, Buffer.from([5])), 'more');
  assert.equal(at(t, Buffer.from([5, 2, 0])), 'more');
  assert.equal(at(t, Buffer.from([5, 1, 0])), 'rule:k/socks5');
  assert.equal(at(t, Buffer.from([5, 2, 0, 2])), 'rule:k/socks5');
  assert.equal(at(t, Buffer.from([5, 2, 0]), FINAL), 'none');
  assert.equal(at(t, Buffer.from([5, 0])), 'none');
  assert.equal(at(t, Buffer.from([4, 1, 0])), 'none');
  assert.equal(at(t, Buffer.from([5, 1, 0x20])), 'none'); // an unassigned method
});

test('http: any request once its request line is whole', () => {
  const t = table([component('h', [{ kind: 'http' }])]);
  assert.equal(at(t, 'GET / HTTP/1.1'), 'more');
  assert.equal(at(t, 'GET / HTTP/1.1\r\n'), 'rule:h/http');
  assert.equal(at(t, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 'rule:h/http');
  assert.equal(at(t, 'BREW / HTTP/1.1\r\n'), 'none:line');
});

test('http with a host condition: more until the Host header or the end of the head', () => {
  const t = table([component('www', [{ kind: 'http', host: ['www.example.org', '*.example.net'] }])]);
  const head = 'GET / HTTP/1.1\r\nUser-Agent: t\r\nHost: WWW.Example.ORG:8080\r\nAccept: */*\r\n\r\n';
  const hostEnd = head.indexOf('Accept');
  for (let n = 1; n < hostEnd; n++) assert.equal(at(t, head.slice(0, n)), 'more', `prefix ${n}`);
  for (let n = hostEnd; n <= head.length; n++) assert.equal(at(t, head.slice(0, n)), 'rule:www/http', `prefix ${n}`);
  assert.equal(at(t, 'GET / HTTP/1.1\r\nHost: api.example.net\r\n\r\n'), 'rule:www/http');
  assert.equal(at(t, 'GET / HTTP/1.1\r\nHost: example.net\r\n\r\n'), 'none:line'); // not the apex
  // A host that does not match: more while the head goes on, no once it is complete.
  const other = 'GET / HTTP/1.1\r\nHost: other.org\r\nAccept: */*\r\n';
  assert.equal(at(t, other), 'more');
  assert.equal(at(t, `${other}\r\n`), 'none:line');
  assert.equal(at(t, other, FINAL), 'none:line');
  // No Host at all (HTTP/1.0): more until the blank line.
  assert.equal(at(t, 'GET / HTTP/1.0\r\n'), 'more');
  assert.equal(at(t, 'GET / HTTP/1.0\r\n\r\n'), 'none:line');
  // A later rule waits for the host rule to give up.
  const chain = table([component('www', [{ kind: 'http', host: ['www.example.org'] }]), component('any', [{ kind: 'http' }])]);
  assert.equal(at(chain, other), 'more');
  assert.equal(at(chain, other, FINAL), 'rule:any/http');
  assert.equal(at(chain, `${other}\r\n`), 'rule:any/http');
});

// ---- TLS with real hellos -----------------------------------------------------------------

interface Hellos {
  /** servername www.example.org, ALPN h2 + http/1.1 */
  readonly www: Buffer;
  /** servername API.example.net, ALPN http/1.1 */
  readonly api: Buffer;
  /** servername example.net (an apex), no ALPN */
  readonly apex: Buffer;
  /** no servername, no ALPN */
  readonly bare: Buffer;
}

// The first bytes of Node's TLS client, recorded by a plain TCP server on 127.0.0.1:0. The
// recorders close with the test that captured them; the bytes stay for later tests.
async function nodeHello(t: test.TestContext, options: { servername: string; ALPNProtocols?: string[] }): Promise<Buffer> {
  const recorder = await startRecorder(t, { enough: (bytes) => sniffTls(bytes).verdict !== 'more', timeoutMs: 3000 });
  const socket = connect({ host: '127.0.0.1', port: recorder.port, rejectUnauthorized: false, ...options });
  socket.on('error', () => {});
  t.after(() => socket.destroy());
  const bytes = await recorder.first;
  socket.destroy();
  assert.equal(sniffTls(bytes).verdict, 'yes', 'a whole ClientHello was recorded');
  return bytes;
}

let captured: Promise<Hellos> | undefined;
function hellos(t: test.TestContext): Promise<Hellos> {
  captured ??= (async () => ({
    www: await nodeHello(t, { servername: 'www.example.org', ALPNProtocols: ['h2', 'http/1.1'] }),
    api: await nodeHello(t, { servername: 'API.example.net', ALPNProtocols: ['http/1.1'] }),
    apex: await nodeHello(t, { servername: 'example.net' }),
    bare: await nodeHello(t, { servername: '' }),
  }))();
  return captured;
}

test('tls with sni (exact and *.domain) and alpn conditions, on real ClientHellos', { timeout: 10_000 }, async (t) => {
  const h = await hellos(t);
  const one = (rule: MatchRule): ((bytes: Buffer) => string) => {
    const tt = table([component('c', [rule])]);
    return (bytes) => at(tt, bytes);
  };
  const any = one({ kind: 'tls' });
  const www = one({ kind: 'tls', sni: ['www.example.org'] });
  const wild = one({ kind: 'tls', sni: ['*.example.net'] });
  const h2 = one({ kind: 'tls', alpn: ['h2'] });
  const both = one({ kind: 'tls', sni: ['www.example.org', 'api.example.net'], alpn: ['http/1.1'] });
  const bothH2 = one({ kind: 'tls', sni: ['api.example.net'], alpn: ['h2'] });
  const YES = 'rule:c/tls';
  for (const bytes of [h.www, h.api, h.apex, h.bare]) assert.equal(any(bytes), YES);
  assert.deepEqual([www(h.www), www(h.api), www(h.apex), www(h.bare)], [YES, 'none', 'none', 'none']);
  assert.deepEqual([wild(h.www), wild(h.api), wild(h.apex), wild(h.bare)], ['none', YES, 'none', 'none']);
  assert.deepEqual([h2(h.www), h2(h.api), h2(h.apex), h2(h.bare)], [YES, 'none', 'none', 'none']);
  assert.deepEqual([both(h.www), both(h.api), both(h.apex), both(h.bare)], [YES, YES, 'none', 'none']);
  assert.deepEqual([bothH2(h.www), bothH2(h.api)], ['none', 'none']);

  // Config order picks among several tls rules; each strict prefix of a hello holds them all.
  const t3 = table([
    component('www', [{ kind: 'tls', sni: ['www.example.org'] }]),
    component('alpn', [{ kind: 'tls', alpn: ['http/1.1'] }]),
    component('rest', [{ kind: 'tls' }]),
    component('rx', [{ kind: 'regex', source: '^\\x16\\x03' }]),
  ]);
  assert.deepEqual([at(t3, h.www), at(t3, h.api), at(t3, h.apex), at(t3, h.bare)], ['rule:www/tls', 'rule:alpn/tls', 'rule:rest/tls', 'rule:rest/tls']);
  for (let n = 1; n < h.www.length; n++) {
    assert.equal(at(t3, h.www.subarray(0, n)), 'more', `prefix ${n}`);
    // Cut short for good (sniff-limit, EOF, timeout): the TLS rules give up, the regex sees 0x16 0x03.
    if (n >= 2) assert.equal(at(t3, h.www.subarray(0, n), FINAL), 'rule:rx/regex', `final prefix ${n}`);
  }
});

// ---- timeout and default ------------------------------------------------------------------

test('timeout: only a client that sent nothing by the sniff-timeout', () => {
  const t = table([component('s', [{ kind: 'ssh' }]), component('quiet', [{ kind: 'timeout' }]), component('fb', [{ kind: 'default' }])]);
  assert.equal(at(t, '', MORE), 'more');
  assert.equal(at(t, '', TIMED_OUT), 'rule:quiet/timeout');
  assert.equal(at(t, '', FINAL), 'rule:fb/default'); // final for another reason
  assert.equal(at(t, 'x', TIMED_OUT), 'rule:fb/default');
  assert.equal(at(t, 'SSH', TIMED_OUT), 'rule:fb/default');
  const noDefault = table([component('quiet', [{ kind: 'timeout' }])]);
  assert.equal(at(noDefault, 'x', TIMED_OUT), 'none');
  assert.equal(at(noDefault, '', TIMED_OUT), 'rule:quiet/timeout');
  assert.equal(at(noDefault, '', FINAL), 'none');
  // A partial TCPMUX name at the timeout is not silence.
  assert.equal(at(noDefault, 'ec', TIMED_OUT), 'none');
});

test('default comes after every rule, whatever its place in the config; also for a silent client', () => {
  const t = table([component('fb', [{ kind: 'default' }]), component('s', [{ kind: 'ssh' }]), component('echo', [], { service: 'echo' })]);
  assert.equal(at(t, 'SSH-'), 'rule:s/ssh');
  assert.equal(at(t, 'hello'), 'rule:fb/default');
  assert.equal(at(t, 'SSH'), 'more');
  assert.equal(at(t, 'SSH', FINAL), 'rule:fb/default');
  assert.equal(at(t, 'echo\r\n'), 'tcpmux:6');
  assert.equal(at(t, 'nosuch\r\n'), 'rule:fb/default');
  assert.equal(at(t, ''), 'more');
  assert.equal(at(t, '', TIMED_OUT), 'rule:fb/default'); // no timeout rule
  assert.equal(at(t, '', FINAL), 'rule:fb/default');
  // The first default and the first timeout in config order count; a component may have both kinds.
  const two = table([
    component('a', [{ kind: 'prefix', text: 'A' }, { kind: 'default' }]),
    component('b', [{ kind: 'default' }, { kind: 'timeout' }]),
    component('c', [{ kind: 'timeout' }]),
  ]);
  assert.equal(at(two, 'z'), 'rule:a/default');
  assert.equal(at(two, 'A'), 'rule:a/prefix');
  assert.equal(at(two, '', TIMED_OUT), 'rule:b/timeout');
});

// ---- disabled components, sniffs() --------------------------------------------------------

test('disabled components are left out: their rules, service names, default and timeout', () => {
  const off: { flags: readonly Flag[] } = { flags: ['disable'] };
  const t = table([
    component('s-off', [{ kind: 'ssh' }, { kind: 'default' }, { kind: 'timeout' }], { ...off, service: 'echo' }),
    component('p-off', [{ kind: 'prefix', text: 'SSH' }], off),
    component('s', [{ kind: 'ssh' }]),
    component('fb', [{ kind: 'default' }]),
  ]);
  assert.equal(at(t, 'SSH-2.0-x\r\n'), 'rule:s/ssh');
  assert.equal(at(t, 'SSH'), 'more'); // the enabled ssh rule, not the disabled prefix
  assert.equal(at(t, 'echo\r\n'), 'rule:fb/default');
  assert.equal(at(t, 'ech'), 'rule:fb/default'); // no enabled service is named so
  assert.equal(at(t, '', TIMED_OUT), 'rule:fb/default');
  assert.equal(t.services.has('echo'), false);
  const onlyOff = table([component('x', [{ kind: 'tls' }, { kind: 'default' }, { kind: 'timeout' }], off), component('echo', [], { service: 'echo' })]);
  assert.equal(sniffs(onlyOff), false);
});

test('sniffs() is true only with rules, a default or a timeout', () => {
  assert.equal(sniffs(table([])), false);
  assert.equal(sniffs(table([component('echo', [], { service: 'echo' }), component('x', [], { service: 'x' })])), false);
  assert.equal(sniffs(table([component('echo', [{ kind: 'prefix', text: 'x' }], { service: 'echo' })])), true);
  assert.equal(sniffs(table([component('fb', [{ kind: 'default' }])])), true);
  assert.equal(sniffs(table([component('quiet', [{ kind: 'timeout' }])])), true);
  for (const rule of [{ kind: 'regex', source: 'x' }, { kind: 'tls' }, { kind: 'http' }, { kind: 'ssh' }, { kind: 'socks5' }] as const) {
    assert.equal(sniffs(table([component('r', [rule])])), true, rule.kind);
  }
});

// ---- properties ---------------------------------------------------------------------------

// A pool of subordinates; each property run takes some of them in some order.
const POOL: readonly Component[] = [
  component('tls-www', [{ kind: 'tls', sni: ['www.example.org'] }]),
  component('tls-alpn', [{ kind: 'tls', alpn: ['http/1.1'] }]),
  component('tls', [{ kind: 'tls' }]),
  component('http-host', [{ kind: 'http', host: ['*.example.org'] }]),
  component('http', [{ kind: 'http' }]),
  component('ssh', [{ kind: 'ssh' }]),
  component('socks', [{ kind: 'socks5' }]),
  component('ping', [{ kind: 'prefix', text: 'PING' }]),
  component('rx-tls', [{ kind: 'regex', source: '^\\x16\\x03' }]),
  component('echo', [], { service: 'echo' }),
  component('get', [], { service: 'Get' }),
  component('fb', [{ kind: 'default' }]),
  component('quiet', [{ kind: 'timeout' }]),
];

const tableArb = fc.record({
  subs: fc.shuffledSubarray([...POOL]),
  maxLineBytes: fc.constantFrom(6, 16, MAX_LINE),
});

const textArb = fc
  .array(fc.constantFrom(...'echoELPGT HSP-1.\r\x00é'.split('')), { maxLength: 24 })
  .map((chars) => chars.join(''));

function inputsArb(h: Hellos): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.constantFrom(
      h.www,
      h.api,
      h.apex,
      h.bare,
      b('GET / HTTP/1.1\r\nHost: www.example.org\r\nAccept: */*\r\n\r\n'),
      b('POST /x HTTP/1.1\r\nHost: other.net\r\nContent-Length: 2\r\n\r\nhi'),
      b('GET / HTTP/1.0\r\n\r\n'),
      b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      b('SSH-2.0-OpenSSH_9.6\r\n'),
      Buffer.from([5, 2, 0, 2]),
      b('echo\r\npayload'),
      b('HELP\n'),
      b('get\r\n'),
      b('nosuch\r\n'),
      b('PING\r\n'),
      b('PINGPONG'),
    ),
    textArb.map((s) => b(`${s}\r\n`)),
    textArb.map((s) => b(`${s}\n${s}`)),
    textArb.map(b),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((u) => Buffer.from(u)),
  );
}

test('property: decisions are stable as bytes arrive (a prefix says more or what the whole says)', { timeout: 20_000 }, async (t) => {
  const h = await hellos(t);
  fc.assert(
    fc.property(tableArb, inputsArb(h), fc.array(fc.nat(), { maxLength: 8 }), ({ subs, maxLineBytes }, whole, cuts) => {
      const tt = table(subs, maxLineBytes);
      const expected = at(tt, whole, FINAL);
      const lengths = new Set([...cuts.map((c) => 1 + (c % whole.length)), whole.length]);
      for (const n of lengths) {
        const got = at(tt, whole.subarray(0, n), MORE);
        assert.ok(got === 'more' || got === expected, `prefix ${n}/${whole.length} of ${JSON.stringify(whole.toString('latin1'))}: ${got}, whole: ${expected}`);
      }
    }),
    { numRuns: 300 },
  );
});

test('property: random bytes never throw, final always decides, and answers are well formed', () => {
  const bytesArb = fc.oneof(
    fc.uint8Array({ maxLength: 600 }).map((u) => Buffer.from(u)),
    textArb.map((s) => b(s.replaceAll('\r', '\r\n'))),
  );
  fc.assert(
    fc.property(tableArb, bytesArb, fc.boolean(), fc.boolean(), ({ subs, maxLineBytes }, bytes, final, timedOut) => {
      const tt = table(subs, maxLineBytes);
      const d = decide(tt, bytes, { final: final || timedOut, timedOut });
      if (final || timedOut) assert.notEqual(d.kind, 'more');
      if (d.kind === 'tcpmux') {
        assert.ok(d.lineBytes <= maxLineBytes && d.lineBytes <= bytes.length);
        assert.equal(bytes[d.lineBytes - 1], 0x0a);
        assert.equal(bytes.subarray(0, d.lineBytes - 1).indexOf(0x0a), -1);
      }
      if (d.kind === 'rule') assert.ok(subs.includes(d.component));
      if (d.kind === 'none') assert.equal(tt.default, undefined);
    }),
    { numRuns: 500 },
  );
});

test('property: tcpmux decisions agree with the plain RFC 1078 line reader', () => {
  const names = ['echo', 'Get', 'a b', 'X'];
  const subs = names.map((n) => component(`svc-${n}`, [], { service: n }));
  const lineArb = fc.tuple(
    fc.oneof(fc.constantFrom('echo', 'ECHO', 'get', 'a b', 'x', 'help', 'HELP', 'echo ', 'ec\x00ho', 'help\r'), textArb),
    fc.constantFrom('\r\n', '\n', ''),
    fc.constantFrom('', 'rest', '\r\n'),
  );
  fc.assert(
    fc.property(lineArb, fc.integer({ min: 1, max: 40 }), ([name, end, rest], maxLineBytes) => {
      const tt = table([...subs, component('fb', [{ kind: 'default' }])], maxLineBytes);
      const bytes = b(name + end + rest);
      const read = createLineReader({ maxLineBytes }).push(bytes);
      let expected = 'rule:fb/default';
      if (read.state === 'line') {
        const request = classifyServiceName(read.line);
        const known = request.kind === 'help' || (request.kind === 'service' && names.some((n) => n.toLowerCase() === request.key));
        if (known) expected = `tcpmux:${bytes.length - read.rest.length}`;
      }
      assert.equal(at(tt, bytes, FINAL), expected);
    }),
    { numRuns: 500 },
  );
});
