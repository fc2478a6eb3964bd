// The control server over real sockets, with a plain-object ControlTarget: socket file mode
// and stale-file handling, the fail-closed inet rules (acl required; admin only through
// admin-acl), per-component list-acl/admin-acl, and the HTTP limits (body size, JSON,
// malformed requests, timeouts), each answered with JSON.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import type { Config, SocketAddress } from '../../src/config/model.js';
import type { ControlTarget } from '../../src/control/routes.js';
import { type ControlServer, type ControlServerOptions, controlAclsOf, startControlServer } from '../../src/control/server.js';
import type { ComponentInfo } from '../../src/daemon.js';
import { PiesError } from '../../src/errors.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { exchange } from '../helpers/tcp-client.js';

const TMP = mkdtempSync(join(tmpdir(), 'tpies-control-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
let n = 0;

function target(calls: string[] = []): ControlTarget {
  const components: ComponentInfo[] = [
    { tag: 'web', mode: 'respawn', state: 'running', pid: 100, since: 1, restarts: 0 },
    { tag: 'secret', mode: 'respawn', state: 'running', pid: 101, since: 1, restarts: 0 },
  ];
  return {
    info: () => ({ pid: 4242, version: '1', configFile: '/x.conf', startedAt: 1, argv: [] }),
    components: () => components,
    reload: async () => ({ ok: true, plan: { entries: [] } }),
    planReload: async () => ({ ok: true, plan: { entries: [] } }),
    stop: async () => {
      calls.push('stop');
    },
    startComponent: async (tag) => (calls.push(`start ${tag}`), true),
    stopComponent: async (tag) => (calls.push(`stop ${tag}`), true),
    restartComponent: async (tag) => (calls.push(`restart ${tag}`), true),
    aclTest: () => ({ decision: 'allow', levels: [] }),
  };
}

const unixAddress = (path: string, extra: Partial<Extract<SocketAddress, { kind: 'unix' }>> = {}): SocketAddress => ({ kind: 'unix', path, url: `unix://${path}`, ...extra });

async function start(t: { after: (fn: () => Promise<void>) => void }, options: Partial<ControlServerOptions> = {}, calls: string[] = []): Promise<ControlServer> {
  const { log } = createMemoryLogger('debug');
  const server = await startControlServer(target(calls), { socket: unixAddress(join(TMP, `c${++n}.sock`)), log, ...options });
  t.after(() => server.close());
  return server;
}

// A config's control settings and ACLs (the real config pipeline builds them).
async function config(text: string): Promise<Config> {
  const file = join(TMP, `c${++n}.conf`);
  writeFileSync(file, text);
  const loaded = await loadConfig(file);
  assert.ok(loaded.config, JSON.stringify(loaded.diagnostics.map((d) => d.message)));
  return loaded.config;
}

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, unknown>;
}

function http(server: ControlServer, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ ...(server.path !== undefined ? { socketPath: server.path } : { host: '127.0.0.1', port: server.port }), method, path, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) as Record<string, unknown> });
        } catch {
          reject(new Error(`not JSON (HTTP ${res.statusCode}): ${text}`));
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('unix control socket', () => {
  test('is created with mode 0600 and removed on close', async (t) => {
    const server = await start(t);
    assert.ok(server.path);
    assert.equal(server.url, `unix://${server.path}`);
    const st = statSync(server.path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    const r = await http(server, 'GET', '/instance');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    await server.close();
    assert.equal(existsSync(server.path), false);
  });

  test('mode= from the socket URL is applied', async (t) => {
    const server = await start(t, { socket: unixAddress(join(TMP, 'mode.sock'), { mode: 0o660 }) });
    assert.equal(statSync(server.path!).mode & 0o777, 0o660);
  });

  test('unix peers administer without an admin-acl', async (t) => {
    const calls: string[] = [];
    const server = await start(t, {}, calls);
    const r = await http(server, 'POST', '/programs/web');
    assert.equal(r.status, 200);
    assert.deepEqual(calls, ['restart web']);
  });

  test('a stale socket file is replaced; a live one or a regular file is refused', async (t) => {
    const stale = join(TMP, 'stale.sock');
    // A process that dies while listening leaves its socket file behind.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.ok(statSync(stale).isSocket());
    const server = await start(t, { socket: unixAddress(stale) });
    assert.equal((await http(server, 'GET', '/instance')).status, 200);

    await assert.rejects(start(t, { socket: unixAddress(stale) }), (e: unknown) => e instanceof PiesError && e.code === 'ERR_CONTROL' && /another process \(another tpies\?\) is answering/.test(e.message));
    const plain = join(TMP, 'plain-file');
    writeFileSync(plain, 'x');
    await assert.rejects(start(t, { socket: unixAddress(plain) }), /exists and is not a socket/);
    await assert.rejects(start(t, { socket: unixAddress(join(TMP, 'no-such-dir', 'x.sock')) }), (e: unknown) => e instanceof PiesError && e.code === 'ERR_CONTROL' && /cannot listen on control socket/.test(e.message));
  });

  test('an acl that does not allow the socket path refuses unix clients too', async (t) => {
    const c = await config('control { acl { allow from 192.0.2.1; deny any; } }');
    const server = await start(t, { acls: controlAclsOf(c) });
    const r = await http(server, 'GET', '/instance');
    assert.equal(r.status, 403);
    assert.equal(r.body.code, 'ERR_FORBIDDEN');
    assert.match(String(r.body.message), /control acl does not allow/);
  });

  test('per-component list-acl and admin-acl', async (t) => {
    const calls: string[] = [];
    const c = await config(`
      component web { command "/bin/true"; admin-acl { deny any; } }
      component secret { command "/bin/true"; list-acl { deny any; } }
    `);
    const server = await start(t, { acls: controlAclsOf(c) }, calls);
    const list = (await http(server, 'GET', '/programs')).body as unknown as { tag: string }[];
    assert.deepEqual(
      list.map((p) => p.tag),
      ['web'],
    );
    assert.equal((await http(server, 'GET', '/programs/secret')).status, 404);
    const r = await http(server, 'DELETE', '/programs/web');
    assert.equal(r.status, 403);
    assert.deepEqual(calls, []);
  });
});

describe('inet control socket', () => {
  const inet: SocketAddress = { kind: 'inet', family: 4, host: '127.0.0.1', port: 0, url: 'inet://127.0.0.1:0' };

  test('is refused without control { acl }', async (t) => {
    await assert.rejects(start(t, { socket: inet }), (e: unknown) => e instanceof PiesError && e.code === 'ERR_CONTROL' && /needs `control \{ acl …; \}`/.test(e.message));
  });

  test('acl allows: read-only without an admin-acl (fail closed)', async (t) => {
    const calls: string[] = [];
    const c = await config('control { acl { allow from 127.0.0.1; } }');
    const server = await start(t, { socket: inet, acls: controlAclsOf(c) }, calls);
    assert.ok(server.port !== undefined && server.port > 0);
    assert.equal(server.url, `inet://127.0.0.1:${server.port}`);
    assert.equal((await http(server, 'GET', '/programs')).status, 200);
    const r = await http(server, 'PUT', '/programs/web');
    assert.equal(r.status, 403);
    assert.match(String(r.body.message), /admin-acl/);
    assert.deepEqual(calls, []);
  });

  test('admin-acl grants the modifying methods', async (t) => {
    const calls: string[] = [];
    const c = await config('defacl local { allow from 127.0.0.1; } control { acl local; admin-acl local; }');
    const server = await start(t, { socket: inet, acls: controlAclsOf(c) }, calls);
    assert.equal((await http(server, 'PUT', '/programs/web')).status, 200);
    assert.deepEqual(calls, ['start web']);
  });

  test('a client no acl entry matches is refused: over TCP the default is deny', async (t) => {
    const c = await config('control { acl { allow from 192.0.2.0/24; } }');
    const server = await start(t, { socket: inet, acls: controlAclsOf(c) });
    const r = await http(server, 'GET', '/instance');
    assert.equal(r.status, 403);
    assert.equal(r.body.code, 'ERR_FORBIDDEN');
  });

  test('the ACLs are read per connection: a reload that removes the acl refuses everybody', async (t) => {
    let current = controlAclsOf(await config('control { acl { allow from 127.0.0.1; } }'));
    const server = await start(t, { socket: inet, acls: () => current });
    assert.equal((await http(server, 'GET', '/instance')).status, 200);
    current = controlAclsOf(await config('control { }'));
    const r = await http(server, 'GET', '/instance');
    assert.equal(r.status, 403);
    assert.match(String(r.body.message), /no control acl/);
  });
});

describe('HTTP limits: every answer is JSON', () => {
  test('a body over 64 KiB is 413 (by Content-Length or as it streams)', async (t) => {
    const server = await start(t);
    const big = 'x'.repeat(64 * 1024 + 1);
    const r = await http(server, 'PUT', '/conf/runtime', big, { 'Content-Type': 'application/json' });
    assert.equal(r.status, 413);
    assert.equal(r.body.code, 'ERR_BODY_TOO_LARGE');
    const raw = await exchange({ path: server.path!, send: ['PUT /conf/runtime HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', `10001\r\n${'y'.repeat(0x10001)}\r\n0\r\n\r\n`] });
    assert.match(raw.data.toString(), /^HTTP\/1\.1 413 /);
    assert.match(raw.data.toString(), /"code":"ERR_BODY_TOO_LARGE"/);
  });

  test('a body that is not JSON is 400; valid JSON is accepted', async (t) => {
    const server = await start(t);
    const bad = await http(server, 'PUT', '/conf/runtime', '{nope', { 'Content-Type': 'application/json' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'ERR_BAD_REQUEST');
    assert.match(String(bad.body.message), /not JSON/);
    assert.equal((await http(server, 'PUT', '/conf/runtime', '{}')).status, 200);
  });

  test('unknown routes and methods are JSON 404 and 405', async (t) => {
    const server = await start(t);
    const r = await http(server, 'GET', '/nosuch?x=1');
    assert.equal(r.status, 404);
    assert.equal(r.body.code, 'ERR_NOT_FOUND');
    const m = await http(server, 'PATCH', '/instance');
    assert.equal(m.status, 405);
    assert.equal(m.headers.allow, 'GET, DELETE');
  });

  test('malformed HTTP is a JSON 400', async (t) => {
    const server = await start(t);
    const r = await exchange({ path: server.path!, send: ['NOT HTTP AT ALL\r\n\r\n'] });
    const text = r.data.toString();
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /"code":"ERR_BAD_REQUEST"/);
  });

  test('headers over the limit are a JSON 400', async (t) => {
    const server = await start(t);
    const r = await exchange({ path: server.path!, send: [`GET /instance HTTP/1.1\r\nX-Big: ${'z'.repeat(10_000)}\r\n\r\n`] });
    assert.match(r.data.toString(), /^HTTP\/1\.1 400 [^]*request headers over/);
  });

  test('a body that stops arriving is a JSON 408', async (t) => {
    const server = await start(t, { requestTimeoutMs: 200 });
    const r = await exchange({ path: server.path!, send: ['PUT /conf/runtime HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{"a'], timeoutMs: 3000 });
    assert.match(r.data.toString(), /^HTTP\/1\.1 408 [^]*"code":"ERR_TIMEOUT"/);
    assert.equal(r.closed, 'end');
  });

  test('an idle connection is closed after the timeout', async (t) => {
    const server = await start(t, { requestTimeoutMs: 200 });
    const r = await exchange({ path: server.path!, timeoutMs: 3000 });
    assert.equal(r.closed, 'end');
    assert.equal(r.data.length, 0);
  });

  test('DELETE /instance answers before the daemon stops', async (t) => {
    const calls: string[] = [];
    const server = await start(t, {}, calls);
    const r = await http(server, 'DELETE', '/instance');
    assert.equal(r.status, 200);
    assert.equal(r.body.message, 'tpies (pid 4242) is shutting down');
    for (let i = 0; i < 100 && calls.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(calls, ['stop']);
  });
});
