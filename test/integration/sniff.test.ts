// One port for everything (docs/sniffing.md): a TCPMUX master whose subordinates have `match`
// rules, reached by real clients — curl (HTTP), openssl s_client (TLS with SNI), OpenSSH's
// ssh — next to an RFC 1078 `help`; split first packets, silent clients, forward to TCP and
// unix backends with half-close and PROXY headers, an unreachable backend, ACLs, and
// pipelined bytes intact whether the connection is handed to a program or forwarded.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type TestContext, before, after, test } from 'node:test';
import { promisify } from 'node:util';
import type { LogEntry } from '../../src/log/logger.js';
import { startTestDaemon, waitFor } from '../helpers/daemon.js';
import { exchange, openClient } from '../helpers/tcp-client.js';

const run = promisify(execFile);
const TIMEOUT = { timeout: 20_000 };

let certDir = '';
let cert = '';
let key = '';

before(async () => {
  certDir = mkdtempSync(path.join(tmpdir(), 'tpies-sniff-cert-'));
  cert = path.join(certDir, 'cert.pem');
  key = path.join(certDir, 'key.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=tls.example', '-days', '1'], { timeout: 10_000 });
});
after(() => rmSync(certDir, { recursive: true, force: true }));

function audits(logs: readonly LogEntry[]): LogEntry[] {
  return logs.filter((e) => e.msg === 'connection');
}

// A server on 127.0.0.1:0 (or a unix path) closed after the test.
async function listen(t: TestContext, server: Server, where: { path?: string } = {}): Promise<number> {
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await new Promise<void>((resolve) => (where.path ? server.listen(where.path, resolve) : server.listen(0, '127.0.0.1', resolve)));
  return where.path ? 0 : (server.address() as AddressInfo).port;
}

// A backend that echoes what it gets and, once the client half-closes, adds a trailer and
// closes its side too (a half-close must reach it, and its reply must still get back).
function echoBackend(t: TestContext): Server {
  const sockets = new Set<Socket>();
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  return createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => s.destroy());
    s.on('close', () => sockets.delete(s));
    s.pipe(s, { end: false });
    s.on('end', () => s.end('<backend saw EOF>'));
  });
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

test('one port: TCPMUX help, curl over HTTP, openssl s_client with SNI, and ssh each reach their backend', TIMEOUT, async (t) => {
  const http = createHttpServer((req, res) => res.end(`http-backend host=${req.headers.host} path=${req.url}\n`));
  const httpPort = await listen(t, http as unknown as Server);
  const d = await startTestDaemon(
    t,
    `
component mux { socket inet://127.0.0.1:0; service tcpmux; flags internal; sniff-timeout 5; }
component echo { tcpmux-master mux; service echo; flags tcpmuxplus; command /bin/cat; }
component web { tcpmux-master mux; match http; forward "inet://127.0.0.1:${httpPort}"; }
component tls-a { tcpmux-master mux; match tls { sni a.example; } command "{{bin}}/tls-server.js ${cert} ${key}"; }
component tls-any { tcpmux-master mux; match tls; command "/bin/echo wrong-tls-backend"; }
component ssh { tcpmux-master mux; match ssh; command "{{bin}}/ssh-banner.js {{dir}}/ssh-client-ident"; }
`,
  );
  const port = d.port('mux');

  const help = await exchange({ port, send: ['help\r\n'] });
  assert.equal(help.data.toString(), 'echo\r\n');

  const curl = await run('curl', ['-sS', '--max-time', '5', '-H', 'Host: www.example.org', `http://127.0.0.1:${port}/hello`]);
  assert.equal(curl.stdout, 'http-backend host=www.example.org path=/hello\n');

  const tls = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'a.example', '-alpn', 'h2', '-quiet'], { timeout: 10_000 }).catch((e: { stdout: string; stderr: string }) => e);
  assert.match(tls.stdout, /tls-fixture sni=a\.example alpn=h2/, tls.stderr);

  // OpenSSH sends its identification at once (RFC 4253 §4.2 lets both sides), so it is sniffed.
  const ssh = await run('ssh', ['-v', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=5', '-p', String(port), 'tpies@127.0.0.1', 'true'], { timeout: 10_000 }).catch(
    (e: { stderr: string }) => e,
  );
  assert.match(ssh.stderr, /remote software version tpiesfixture/);
  await waitFor(() => audits(d.logs).filter((e) => e.subordinate === 'ssh').length === 1, 5000, 'the ssh audit event');
  assert.match(readFileSync(path.join(d.dir, 'ssh-client-ident'), 'latin1'), /^SSH-2\.0-OpenSSH_[^\r\n]+\r\n$/);

  await waitFor(() => audits(d.logs).length === 4, 5000, 'four audit events');
  const bySub = Object.fromEntries(audits(d.logs).map((e) => [String(e.subordinate ?? e.outcome), e]));
  assert.equal(bySub.web?.match, 'http');
  assert.equal(bySub.web?.outcome, 'forwarded');
  assert.equal(bySub['tls-a']?.match, 'tls');
  assert.equal(bySub.ssh?.match, 'ssh');
  assert.equal(bySub.help?.service, 'help');
});

test('the first bytes may come one at a time: split packets still match, and nothing is lost', TIMEOUT, async (t) => {
  const d = await startTestDaemon(
    t,
    `
component mux { socket inet://127.0.0.1:0; service tcpmux; flags internal; sniff-timeout 5; }
component other { tcpmux-master mux; match http { host other.example; } command "/bin/echo wrong"; }
component web { tcpmux-master mux; match http { host www.example.org; } command /bin/cat; }
component echo { tcpmux-master mux; service echo; flags tcpmuxplus; command /bin/cat; }
`,
  );
  const request = 'GET / HTTP/1.1\r\nUser-Agent: split\r\nHost: www.example.org\r\n\r\nbody';
  const send: (string | number)[] = [];
  for (const ch of request) send.push(ch, 2);
  const r = await exchange({ port: d.port('mux'), send, halfClose: true });
  // cat gives back every byte, the sniffed ones first.
  assert.equal(r.data.toString(), request);
  // An RFC 1078 line split as well, still a TCPMUX request.
  const line = await exchange({ port: d.port('mux'), send: ['e', 20, 'ch', 20, 'o\r', 20, '\nafter'], halfClose: true });
  assert.equal(line.data.toString(), '+\r\nafter');
});

test('a client that sends nothing: the timeout rule serves it after sniff-timeout; without one it is closed', TIMEOUT, async (t) => {
  const d = await startTestDaemon(
    t,
    `
component mux { socket inet://127.0.0.1:0; service tcpmux; flags internal; sniff-timeout 0.3; }
component banner { tcpmux-master mux; match timeout; command "/bin/echo server speaks first"; }
component web { tcpmux-master mux; match http; command /bin/cat; }
component quiet { socket inet://127.0.0.1:0; service tcpmux; flags internal; sniff-timeout 0.3; no-match-message "who are you?\\r\\n"; }
component quiet-web { tcpmux-master quiet; match http; command /bin/cat; }
`,
  );
  const started = Date.now();
  const silent = await exchange({ port: d.port('mux'), timeoutMs: 5000 });
  assert.equal(silent.data.toString(), 'server speaks first\n');
  assert.ok(Date.now() - started >= 250, 'served only after sniff-timeout');
  const quiet = await exchange({ port: d.port('quiet'), timeoutMs: 5000 });
  assert.equal(quiet.data.toString(), 'who are you?\r\n');
  assert.equal(quiet.closed, 'end');
  // Bytes nothing matches get the same answer as silence when there is no default rule.
  const garbage = await exchange({ port: d.port('quiet'), send: [Buffer.from([0, 1, 2, 3])], timeoutMs: 5000 });
  assert.equal(garbage.data.toString(), 'who are you?\r\n');
  await waitFor(() => audits(d.logs).length === 3, 5000, 'three audit events');
  assert.deepEqual(
    audits(d.logs).map((e) => [e.component, e.outcome, e.match]),
    [
      ['mux', 'served', 'timeout'],
      ['quiet', 'no-match', undefined],
      ['quiet', 'no-match', undefined],
    ],
  );
});

test('forward to TCP and unix backends: pipelined bytes intact and half-close both ways', TIMEOUT, async (t) => {
  const tcpPort = await listen(t, echoBackend(t));
  const dir = mkdtempSync(path.join(tmpdir(), 'tpies-sniff-unix-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const unixPath = path.join(dir, 'backend.sock');
  await listen(t, echoBackend(t), { path: unixPath });
  const d = await startTestDaemon(
    t,
    `
component mux { socket inet://127.0.0.1:0; service tcpmux; flags internal; }
component to-tcp { tcpmux-master mux; match prefix "TCP:"; forward "inet://127.0.0.1:${tcpPort}"; }
component to-unix { tcpmux-master mux; match prefix "UNIX:"; forward "unix://${unixPath}"; }
component named { tcpmux-master mux; service named; flags tcpmuxplus; forward "inet://127.0.0.1:${tcpPort}"; }
`,
  );
  for (const [label, head] of [
    ['tcp', 'TCP:'],
    ['unix', 'UNIX:'],
    ['tcpmux line', 'named\r\n'],
  ] as const) {
    const payload = Buffer.concat([Buffer.from(head), randomBytes(3 * 1024 * 1024 + 17)]);
    const r = await exchange({ port: d.port('mux'), send: [payload], halfClose: true, timeoutMs: 15_000 });
    const expected = Buffer.concat([label === 'tcpmux line' ? Buffer.from('+\r\n') : Buffer.alloc(0), label === 'tcpmux line' ? payload.subarray(head.length) : payload, Buffer.from('<backend saw EOF>')]);
    assert.equal(r.closed, 'end', label);
    assert.equal(r.data.length, expected.length, label);
    assert.equal(sha(r.data), sha(expected), label);
  }
  // The backend closes first: the client sees EOF and may still send.
  const backendFirst = createServer({ allowHalfOpen: true }, (s) => {
    s.end('bye\n');
    let got = '';
    s.on('data', (c) => (got += c));
    s.on('end', () => s.destroy());
    s.on('close', () => void (lastHeard = got));
  });
  let lastHeard = '';
  const firstPort = await listen(t, backendFirst);
  const d2 = await startTestDaemon(t, `component relay { socket inet://127.0.0.1:0; forward "inet://127.0.0.1:${firstPort}"; }`);
  const client = await openClient(t, { port: d2.port('relay') });
  await client.until('bye\n');
  client.socket.end('late words');
  assert.equal(await client.closed, 'end');
  await waitFor(() => lastHeard === 'late words', 5000, 'the backend to hear the client after its own FIN');
  await waitFor(() => audits(d.logs).length === 3 && audits(d2.logs).length === 1, 5000, 'audit events');
  const tcp = audits(d.logs).find((e) => e.subordinate === 'to-tcp');
  assert.equal(tcp?.bytesFromClient, 3 * 1024 * 1024 + 17 + 4);
  assert.equal(tcp?.bytesFromBackend, 3 * 1024 * 1024 + 17 + 4 + '<backend saw EOF>'.length);
});

test('PROXY protocol v1 and v2 tell the backend who the client is', TIMEOUT, async (t) => {
  const heard: Buffer[] = [];
  const recorder = createServer((s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => {
      heard.push(Buffer.concat(chunks));
      s.end();
    });
  });
  const port = await listen(t, recorder);
  const d = await startTestDaemon(
    t,
    `
component mux { socket inet://127.0.0.1:0; service tcpmux; flags internal; }
component v1 { tcpmux-master mux; match prefix "one"; forward "inet://127.0.0.1:${port}"; proxy-protocol v1; }
component v2 { tcpmux-master mux; match prefix "two"; forward "inet://127.0.0.1:${port}"; proxy-protocol v2; }
`,
  );
  const mux = d.port('mux');
  const c1 = await openClient(t, { port: mux });
  c1.socket.end('one!');
  await c1.closed;
  await waitFor(() => heard.length === 1, 5000, 'the v1 backend');
  assert.equal(heard[0]!.toString(), `PROXY TCP4 127.0.0.1 127.0.0.1 ${c1.localPort} ${mux}\r\none!`);
  const c2 = await openClient(t, { port: mux });
  c2.socket.end('two!');
  await c2.closed;
  await waitFor(() => heard.length === 2, 5000, 'the v2 backend');
  const v2 = heard[1]!;
  assert.deepEqual(v2.subarray(0, 12), Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]));
  assert.equal(v2[12], 0x21);
  assert.equal(v2[13], 0x11);
  assert.equal(v2.readUInt16BE(14), 12);
  assert.deepEqual([...v2.subarray(16, 24)], [127, 0, 0, 1, 127, 0, 0, 1]);
  assert.equal(v2.readUInt16BE(24), c2.localPort);
  assert.equal(v2.readUInt16BE(26), mux);
  assert.equal(v2.subarray(28).toString(), 'two!');
});

test('backend down: the client is closed cleanly and the failure is logged', TIMEOUT, async (t) => {
  // A port that was just free: nothing listens there.
  const probe = createServer();
  const deadPort = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as AddressInfo).port)));
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const d = await startTestDaemon(
    t,
    `
component mux { socket inet://127.0.0.1:0; service tcpmux; flags internal; }
component dead { tcpmux-master mux; match http; forward "inet://127.0.0.1:${deadPort}"; }
`,
  );
  const r = await exchange({ port: d.port('mux'), send: ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'], timeoutMs: 5000 });
  assert.equal(r.closed, 'end');
  assert.equal(r.data.length, 0);
  await waitFor(() => audits(d.logs).length === 1, 5000, 'the audit event');
  assert.equal(audits(d.logs)[0]?.outcome, 'backend-unreachable');
  assert.match(String(audits(d.logs)[0]?.reason), /ECONNREFUSED/);
  assert.ok(d.logs.some((e) => e.msg === 'forward target unreachable' && e.component === 'dead'));
  // The daemon is still serving.
  const again = await exchange({ port: d.port('mux'), send: ['GET / HTTP/1.1\r\n\r\n'], timeoutMs: 5000 });
  assert.equal(again.closed, 'end');
});

test('ACLs, limits and sockenv apply to sniffed connections; the audit event names the rule', TIMEOUT, async (t) => {
  const d = await startTestDaemon(
    t,
    `
component mux { socket inet://127.0.0.1:0; service tcpmux; flags internal; }
component denied { tcpmux-master mux; match prefix "deny"; acl { deny all; } access-denied-message "not you\\n"; command /bin/cat; }
component env { tcpmux-master mux; match prefix "env"; flags sockenv; command "/usr/bin/env"; }
component busy { tcpmux-master mux; match prefix "busy"; max-instances 1; max-instances-message "busy\\n"; command "/bin/sleep 5"; }
`,
  );
  const port = d.port('mux');
  const denied = await exchange({ port, send: ['deny me'], timeoutMs: 5000 });
  assert.equal(denied.data.toString(), 'not you\n');
  const env = await exchange({ port, send: ['env'], halfClose: true, timeoutMs: 5000 });
  assert.match(env.data.toString(), /^REMOTEIP=127\.0\.0\.1$/m);
  assert.match(env.data.toString(), new RegExp(`^LOCALPORT=${port}$`, 'm'));
  const first = await openClient(t, { port });
  first.socket.write('busy');
  await waitFor(() => d.daemon.instances('busy') === 1, 5000, 'the first busy instance');
  const second = await exchange({ port, send: ['busy'], timeoutMs: 5000 });
  assert.equal(second.data.toString(), 'busy\n');
  first.socket.destroy();
  await waitFor(() => audits(d.logs).length >= 3, 5000, 'audit events');
  const events = audits(d.logs);
  assert.deepEqual(
    events.filter((e) => e.outcome === 'denied' || e.outcome === 'refused').map((e) => [e.subordinate, e.match, e.outcome]),
    [
      ['denied', 'prefix', 'denied'],
      ['busy', 'prefix', 'refused'],
    ],
  );
});

test('pipelined bytes reach a program intact after sniffing (command hand-off)', TIMEOUT, async (t) => {
  const d = await startTestDaemon(
    t,
    `
component mux { socket inet://127.0.0.1:0; service tcpmux; flags internal; }
component tls { tcpmux-master mux; match regex "^\\x16\\x03[\\x00-\\x04]"; command /bin/cat; }
`,
  );
  for (let i = 0; i < 5; i++) {
    const payload = Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), randomBytes(1 + Math.floor(Math.random() * 2 * 1024 * 1024))]);
    const r = await exchange({ port: d.port('mux'), send: [payload], halfClose: true, timeoutMs: 15_000 });
    assert.equal(r.data.length, payload.length);
    assert.equal(sha(r.data), sha(payload));
  }
});

test('a connection still sniffing when the daemon stops is closed, and nothing hangs', TIMEOUT, async (t) => {
  const d = await startTestDaemon(
    t,
    `
component mux { socket inet://127.0.0.1:0; service tcpmux; flags internal; sniff-timeout 30; }
component web { tcpmux-master mux; match http; command /bin/cat; }
`,
  );
  const client = await openClient(t, { port: d.port('mux') });
  client.socket.write('GE');
  await new Promise((r) => setTimeout(r, 100));
  const stopped = Date.now();
  await d.daemon.stop();
  assert.ok(Date.now() - stopped < 3000);
  assert.ok(['end', 'reset'].includes(await client.closed));
});
