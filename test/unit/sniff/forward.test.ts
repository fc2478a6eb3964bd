// forward(): a real proxy listener (paused accepts, as the master's) in front of real TCP and
// unix backends, with real clients: half-close both ways, unreachable and silent backends,
// PROXY headers as the backend sees them, bytes intact, backpressure, resets, no leftovers.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SocketAddress } from '../../../src/config/model.js';
import { AF_INET, SOCK_STREAM, loadLibc, writeFamily } from '../../../src/native/libc.js';
import { type ForwardOptions, type ForwardResult, forward } from '../../../src/sniff/forward.js';
import { readServiceLine } from '../../../src/tcpmux/read-line.js';

const LIMIT = { timeout: 20_000 };

// ---- fixtures --------------------------------------------------------------------------------

async function listen(t: TestContext, server: Server, where: { path: string } | { port: 0; host: string }): Promise<Server> {
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, resolve);
  });
  return server;
}

const inet = (port: number): SocketAddress => ({ kind: 'inet', family: 4, host: '127.0.0.1', port, url: `inet://127.0.0.1:${port}` });
const unixAt = (p: string): SocketAddress => ({ kind: 'unix', path: p, url: `unix://${p}` });
const portOf = (server: Server): number => (server.address() as AddressInfo).port;

interface Proxy {
  readonly port: number;
  /** One per accepted connection, in order. */
  readonly results: Promise<ForwardResult>[];
  /** The proxy's side of each client connection. */
  readonly accepted: Socket[];
  readonly server: Server;
}

// The proxy listener: accepted paused and half-open, like the master's; `before` may consume
// a TCPMUX line first.
async function startProxy(
  t: TestContext,
  options: (socket: Socket) => ForwardOptions,
  before?: (socket: Socket) => Promise<void>,
): Promise<Proxy> {
  const results: Promise<ForwardResult>[] = [];
  const accepted: Socket[] = [];
  const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
    accepted.push(socket);
    results.push((before ? before(socket) : Promise.resolve()).then(() => forward(socket, options(socket))));
  });
  await listen(t, server, { port: 0, host: '127.0.0.1' });
  return { port: portOf(server), results, accepted, server };
}

interface Peer {
  readonly socket: Socket;
  readonly data: () => Buffer;
  /** Resolves at EOF ('end') with everything read, or rejects on an error. */
  readonly ended: Promise<Buffer>;
  readonly closed: Promise<void>;
}

function peer(socket: Socket): Peer {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const data = (): Buffer => Buffer.concat(chunks);
  const ended = new Promise<Buffer>((resolve, reject) => {
    socket.once('end', () => resolve(data()));
    socket.once('error', reject);
  });
  ended.catch(() => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, data, ended, closed };
}

async function dial(t: TestContext, port: number): Promise<Peer> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  t.after(() => socket.destroy());
  const p = peer(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return p;
}

// A backend server whose connections arrive as Peers, in order.
async function backendServer(t: TestContext, where: { path: string } | { port: 0; host: string }, onPeer?: (p: Peer) => void) {
  const peers: Peer[] = [];
  const waiting: ((p: Peer) => void)[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const p = peer(socket);
    onPeer?.(p);
    const w = waiting.shift();
    if (w) w(p);
    else peers.push(p);
  });
  await listen(t, server, where);
  const next = (): Promise<Peer> => {
    const p = peers.shift();
    return p ? Promise.resolve(p) : new Promise((resolve) => waiting.push(resolve));
  };
  return { server, next };
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tpies-forward-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const connections = (server: Server): Promise<number> =>
  new Promise((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n))));

// Every forward() resolved means both of its sockets closed; the servers agree.
async function assertNothingOpen(proxy: Proxy, ...servers: Server[]): Promise<void> {
  await Promise.all(proxy.results);
  for (const s of proxy.accepted) assert.ok(s.closed, 'a proxy-side client socket is still open');
  for (const server of [proxy.server, ...servers]) {
    for (let i = 0; (await connections(server)) > 0; i++) {
      assert.ok(i < 100, 'connections left open');
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

// A number from /proc/sys (e.g. tcp_wmem's maximum is field 2).
function sysctlField(name: string, field: number): number {
  const value = Number(readFileSync(`/proc/sys/${name}`, 'utf8').trim().split(/\s+/)[field]);
  assert.ok(Number.isFinite(value) && value > 0, `/proc/sys/${name}`);
  return value;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

// ---- half-close, both ways, TCP and unix -------------------------------------------------------

for (const kind of ['tcp', 'unix'] as const) {
  test(`${kind} backend: client EOF reaches the backend, which can still answer`, LIMIT, async (t) => {
    const where = kind === 'tcp' ? ({ port: 0, host: '127.0.0.1' } as const) : { path: path.join(await tempDir(t), 'backend.sock') };
    // The backend answers only after the client's EOF: it proves the EOF came through alone.
    const backend = await backendServer(t, where, (p) => {
      void p.ended.then((got) => p.socket.end(`got ${got.length}: ${got.toString()}`));
    });
    const target = kind === 'tcp' ? inet(portOf(backend.server)) : unixAt(where.path ?? '');
    const proxy = await startProxy(t, () => ({ target, connectTimeoutMs: 2000 }));
    const client = await dial(t, proxy.port);
    client.socket.end('hello');
    const reply = await client.ended;
    assert.equal(reply.toString(), 'got 5: hello');
    const result = await proxy.results[0];
    assert.deepEqual(result, { outcome: 'forwarded', bytesFromClient: 5, bytesFromBackend: 12 });
    await client.closed;
    await assertNothingOpen(proxy, backend.server);
  });

  test(`${kind} backend: backend EOF reaches the client, which can still send`, LIMIT, async (t) => {
    const where = kind === 'tcp' ? ({ port: 0, host: '127.0.0.1' } as const) : { path: path.join(await tempDir(t), 'backend.sock') };
    const backend = await backendServer(t, where, (p) => p.socket.end('banner\n'));
    const target = kind === 'tcp' ? inet(portOf(backend.server)) : unixAt(where.path ?? '');
    const proxy = await startProxy(t, () => ({ target, connectTimeoutMs: 2000 }));
    const client = await dial(t, proxy.port);
    assert.equal((await client.ended).toString(), 'banner\n');
    // The backend's write side is closed; its read side is not, and neither is the client's.
    client.socket.end('after your FIN');
    const server = await backend.next();
    assert.equal((await server.ended).toString(), 'after your FIN');
    assert.deepEqual(await proxy.results[0], { outcome: 'forwarded', bytesFromClient: 14, bytesFromBackend: 7 });
  });
}

// ---- unreachable backends ---------------------------------------------------------------------

async function closedPort(t: TestContext): Promise<number> {
  const s = createServer();
  await listen(t, s, { port: 0, host: '127.0.0.1' });
  const port = portOf(s);
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

test('backend refused: the client gets a FIN, not a reset, even with unread bytes sent', LIMIT, async (t) => {
  const port = await closedPort(t);
  const proxy = await startProxy(t, () => ({ target: inet(port), connectTimeoutMs: 2000 }));
  const client = await dial(t, proxy.port);
  // Bytes the proxy never reads: closing over them without draining would send a reset.
  client.socket.write(randomBytes(100_000));
  await client.ended; // rejects on ECONNRESET
  client.socket.end();
  const result = await proxy.results[0];
  assert.deepEqual(result, { outcome: 'backend-unreachable', reason: 'ECONNREFUSED', bytesFromClient: 0, bytesFromBackend: 0 });
  await client.closed;
});

test('a target Node refuses outright is unreachable, not a crash', LIMIT, async (t) => {
  const proxy = await startProxy(t, () => ({ target: inet(70_000), connectTimeoutMs: 2000 }));
  const client = await dial(t, proxy.port);
  assert.equal((await client.ended).length, 0);
  client.socket.end();
  assert.deepEqual(await proxy.results[0], { outcome: 'backend-unreachable', reason: 'ERR_SOCKET_BAD_PORT', bytesFromClient: 0, bytesFromBackend: 0 });
});

test('unix backend missing: ENOENT, client closed cleanly', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const proxy = await startProxy(t, () => ({ target: unixAt(path.join(dir, 'nobody.sock')), connectTimeoutMs: 2000 }));
  const client = await dial(t, proxy.port);
  client.socket.write('GET / HTTP/1.0\r\n\r\n');
  assert.equal((await client.ended).length, 0);
  client.socket.end();
  const result = await proxy.results[0];
  assert.equal(result?.outcome, 'backend-unreachable');
  assert.equal(result?.reason, 'ENOENT');
});

test('connect timeout: a backend whose accept queue is full', LIMIT, async (t) => {
  // A listening socket nobody accepts on, with backlog 0: one connection fills its queue and
  // the kernel then drops further SYNs, so a connect hangs (libc through koffi: Node always
  // accepts on the sockets it listens on).
  const libc = loadLibc();
  if (libc instanceof Error) throw libc;
  const fd = libc.socket(AF_INET, SOCK_STREAM, 0);
  assert.ok(fd >= 0);
  t.after(() => libc.close(fd));
  const sa = Buffer.alloc(16);
  writeFamily(sa, AF_INET);
  sa.set([127, 0, 0, 1], 4);
  assert.equal(libc.bind(fd, sa, 16), 0);
  assert.equal(libc.listen(fd, 0), 0);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(16);
  assert.equal(libc.getsockname(fd, sa, len), 0);
  const port = sa.readUInt16BE(2);
  await dial(t, port); // the one the queue holds

  const proxy = await startProxy(t, () => ({ target: inet(port), connectTimeoutMs: 300 }));
  const t0 = performance.now();
  const client = await dial(t, proxy.port);
  client.socket.write('hello?');
  await client.ended;
  const waited = performance.now() - t0;
  client.socket.end();
  const result = await proxy.results[0];
  assert.deepEqual(result, { outcome: 'backend-unreachable', reason: 'ETIMEDOUT', bytesFromClient: 0, bytesFromBackend: 0 });
  assert.ok(waited >= 250 && waited < 3000, `gave up after ${waited.toFixed(0)} ms`);
});

// ---- PROXY headers ------------------------------------------------------------------------------

for (const version of [1, 2] as const) {
  test(`PROXY v${version}: the backend reads the header, then the client's bytes`, LIMIT, async (t) => {
    const backend = await backendServer(t, { port: 0, host: '127.0.0.1' }, (p) => void p.ended.then(() => p.socket.end()));
    const proxy = await startProxy(t, (s) => ({
      target: inet(portOf(backend.server)),
      connectTimeoutMs: 2000,
      proxyProtocol: version,
      source: { address: s.remoteAddress ?? '', port: s.remotePort ?? -1, family: 4 },
      destination: { address: s.localAddress ?? '', port: s.localPort ?? -1, family: 4 },
    }));
    const client = await dial(t, proxy.port);
    const cport = client.socket.localPort ?? 0;
    client.socket.end('payload');
    const got = await (await backend.next()).ended;
    const header =
      version === 1
        ? Buffer.from(`PROXY TCP4 127.0.0.1 127.0.0.1 ${cport} ${proxy.port}\r\n`)
        : Buffer.concat([
            Buffer.from('0d0a0d0a000d0a515549540a', 'hex'),
            Buffer.from([0x21, 0x11, 0, 12, 127, 0, 0, 1, 127, 0, 0, 1, cport >> 8, cport & 0xff, proxy.port >> 8, proxy.port & 0xff]),
          ]);
    assert.equal(got.toString('hex'), Buffer.concat([header, Buffer.from('payload')]).toString('hex'));
    assert.deepEqual(await proxy.results[0], { outcome: 'forwarded', bytesFromClient: 7, bytesFromBackend: 0 });
  });
}

// ---- bytes intact ----------------------------------------------------------------------------

// An echo backend: whatever arrives goes back, EOF included.
async function echoBackend(t: TestContext) {
  return backendServer(t, { port: 0, host: '127.0.0.1' }, (p) => {
    p.socket.pipe(p.socket);
  });
}

// Send `chunks` (written back to back, so they are pipelined behind the connect), half-close,
// and return what came back.
async function roundTrip(port: number, first: Buffer, chunks: readonly Buffer[]): Promise<Buffer> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const p = peer(socket);
  try {
    socket.write(first);
    for (const c of chunks) socket.write(c);
    socket.end();
    return await p.ended;
  } finally {
    socket.destroy();
  }
}

test('pipelined bytes arrive intact (random sizes up to 1 MB, sha-256 both ways)', LIMIT, async (t) => {
  const backend = await echoBackend(t);
  const proxy = await startProxy(t, () => ({ target: inet(portOf(backend.server)), connectTimeoutMs: 2000 }));
  const sizes = [0, 1, 2, 7, 1000, 65_535, 65_536, 65_537, 262_144, 262_145, 524_288 + 3, 1_048_576];
  for (let i = 0; i < 8; i++) sizes.push(1 + Math.floor(Math.random() * 1_048_576));
  const runs = sizes.map(async (size) => {
    const data = randomBytes(size);
    // Uneven write sizes, so chunk boundaries fall everywhere.
    const parts: Buffer[] = [];
    for (let at = 0; at < size; ) {
      const n = Math.min(size - at, 1 + Math.floor(Math.random() * 200_000));
      parts.push(data.subarray(at, at + n));
      at += n;
    }
    const echoed = await roundTrip(proxy.port, Buffer.alloc(0), parts);
    assert.equal(echoed.length, size);
    assert.equal(sha(echoed), sha(data), `size ${size}`);
  });
  await Promise.all(runs);
  const results = await Promise.all(proxy.results);
  assert.equal(results.length, sizes.length);
  const total = sizes.reduce((a, b) => a + b, 0);
  assert.equal(results.reduce((a, r) => a + r.bytesFromClient, 0), total);
  assert.equal(results.reduce((a, r) => a + r.bytesFromBackend, 0), total);
  for (const r of results) assert.equal(r.outcome, 'forwarded');
  await assertNothingOpen(proxy, backend.server);
});

test('after a TCPMUX line read byte-exact, the bytes behind it reach the backend', LIMIT, async (t) => {
  const backend = await echoBackend(t);
  const proxy = await startProxy(
    t,
    () => ({ target: inet(portOf(backend.server)), connectTimeoutMs: 2000 }),
    async (s) => {
      const r = await readServiceLine(s, { maxLineBytes: 512, timeoutMs: 2000 }).result;
      assert.equal(r.state, 'line');
    },
  );
  for (let i = 0; i < 10; i++) {
    const data = randomBytes(Math.floor(Math.random() * 300_000));
    const echoed = await roundTrip(proxy.port, Buffer.from('svc\r\n'), [data]);
    assert.equal(sha(echoed), sha(data));
  }
  for (const r of await Promise.all(proxy.results)) assert.equal(r.outcome, 'forwarded');
});

// ---- backpressure ----------------------------------------------------------------------------

test('a backend that does not read stalls the client; the proxy does not buffer it', LIMIT, async (t) => {
  const TOTAL = 64 * 1024 * 1024;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const received = { bytes: 0, hash: createHash('sha256') };
  let backendDone!: () => void;
  const done = new Promise<void>((resolve) => (backendDone = resolve));
  const backend = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
    void released.then(() => {
      s.on('data', (c: Buffer) => {
        received.bytes += c.length;
        received.hash.update(c);
      });
      s.on('end', () => {
        s.end();
        backendDone();
      });
      s.resume();
    });
  });
  await listen(t, backend, { port: 0, host: '127.0.0.1' });
  const proxy = await startProxy(t, () => ({ target: inet(portOf(backend)), connectTimeoutMs: 2000 }));
  const client = await dial(t, proxy.port);

  // One 1 MiB pattern written 64 times; the client honours its own backpressure.
  const chunk = randomBytes(1024 * 1024);
  const sent = createHash('sha256');
  let written = 0;
  let lastProgress = performance.now();
  const pump = (): void => {
    while (written < TOTAL) {
      written += chunk.length;
      sent.update(chunk);
      lastProgress = performance.now();
      if (!client.socket.write(chunk)) return void client.socket.once('drain', pump);
    }
    client.socket.end();
  };
  const memBefore = process.memoryUsage().arrayBuffers;
  pump();
  // Wait until the client has made no progress for 300 ms.
  while (performance.now() - lastProgress < 300) await new Promise((r) => setTimeout(r, 50));
  const proxyRead = proxy.accepted[0]?.bytesRead ?? -1;
  const memGrowth = process.memoryUsage().arrayBuffers - memBefore;
  assert.ok(written < TOTAL, `the client was never held back (${written} bytes written)`);
  // What the kernel holds between proxy and backend (the proxy's send buffer, at most
  // tcp_wmem's maximum; the backend's receive buffer, which does not grow while unread), the
  // proxy's own 2 × 256 KiB, and 2 MiB to spare. A proxy without backpressure reads it all.
  const bound = sysctlField('net/ipv4/tcp_wmem', 2) + sysctlField('net/ipv4/tcp_rmem', 1) + 3 * 1024 * 1024;
  assert.ok(proxyRead > 0 && proxyRead < bound, `the proxy read ${proxyRead} bytes (bound ${bound}) while the backend read none`);
  assert.ok(memGrowth < 16 * 1024 * 1024, `array buffers grew by ${memGrowth} bytes`);

  release();
  await done;
  assert.equal(received.bytes, TOTAL);
  assert.equal(received.hash.digest('hex'), sent.digest('hex'));
  await client.ended;
  assert.deepEqual(await proxy.results[0], { outcome: 'forwarded', bytesFromClient: TOTAL, bytesFromBackend: 0 });
});

test('a client that does not read stalls the backend the same way', LIMIT, async (t) => {
  const TOTAL = 48 * 1024 * 1024;
  const chunk = randomBytes(1024 * 1024);
  let backendWritten = 0;
  let lastProgress = performance.now();
  const backend = await backendServer(t, { port: 0, host: '127.0.0.1' }, (p) => {
    const pump = (): void => {
      while (backendWritten < TOTAL) {
        backendWritten += chunk.length;
        lastProgress = performance.now();
        if (!p.socket.write(chunk)) return void p.socket.once('drain', pump);
      }
      p.socket.end();
    };
    pump();
  });
  const proxy = await startProxy(t, () => ({ target: inet(portOf(backend.server)), connectTimeoutMs: 2000 }));
  const socket = connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true });
  t.after(() => socket.destroy());
  socket.pause();
  await new Promise((r) => socket.once('connect', r));
  while (performance.now() - lastProgress < 300 || backendWritten === 0) await new Promise((r) => setTimeout(r, 50));
  assert.ok(backendWritten < TOTAL, 'the backend was never held back');
  let got = 0;
  socket.on('data', (c: Buffer) => (got += c.length));
  socket.resume();
  await new Promise((r) => socket.once('end', r));
  assert.equal(got, TOTAL);
  socket.end();
  assert.deepEqual(await proxy.results[0], { outcome: 'forwarded', bytesFromClient: 0, bytesFromBackend: TOTAL });
});

test('small reads held back by a slow backend stay intact while other connections read', LIMIT, async (t) => {
  // Small reads go through a buffer every connection shares; one held back by its backend
  // must not be overwritten by the reads of another.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const slowGot = createHash('sha256');
  let slowBytes = 0;
  let slowDone!: () => void;
  const slowFinished = new Promise<void>((resolve) => (slowDone = resolve));
  const slowBackend = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
    void released.then(() => {
      s.on('data', (c: Buffer) => {
        slowBytes += c.length;
        slowGot.update(c);
      });
      s.on('end', () => {
        s.end();
        slowDone();
      });
      s.resume();
    });
  });
  await listen(t, slowBackend, { port: 0, host: '127.0.0.1' });
  const slowProxy = await startProxy(t, () => ({ target: inet(portOf(slowBackend)), connectTimeoutMs: 2000 }));
  const echo = await echoBackend(t);
  const echoProxy = await startProxy(t, () => ({ target: inet(portOf(echo.server)), connectTimeoutMs: 2000 }));

  // 16 KiB every millisecond or so: each read is small, and the backend's buffers fill.
  const a = await dial(t, slowProxy.port);
  const sent = createHash('sha256');
  const PIECES = 400;
  let busyEcho = true;
  const echoing = (async () => {
    while (busyEcho) {
      const data = randomBytes(1 + Math.floor(Math.random() * 60_000));
      const back = await roundTrip(echoProxy.port, Buffer.alloc(0), [data]);
      assert.equal(sha(back), sha(data));
    }
  })();
  for (let i = 0; i < PIECES; i++) {
    const piece = randomBytes(16 * 1024);
    sent.update(piece);
    a.socket.write(piece);
    await new Promise((r) => setTimeout(r, 1));
  }
  a.socket.end();
  await new Promise((r) => setTimeout(r, 100));
  const readByProxy = slowProxy.accepted[0]?.bytesRead ?? 0;
  busyEcho = false;
  await echoing;
  release();
  await slowFinished;
  assert.ok(readByProxy < PIECES * 16 * 1024, 'the slow backend never held the proxy back');
  assert.equal(slowBytes, PIECES * 16 * 1024);
  assert.equal(slowGot.digest('hex'), sent.digest('hex'));
  await a.ended;
});

// ---- errors ------------------------------------------------------------------------------------

test('a reset on one side resets the other', LIMIT, async (t) => {
  const backend = await backendServer(t, { port: 0, host: '127.0.0.1' });
  const proxy = await startProxy(t, () => ({ target: inet(portOf(backend.server)), connectTimeoutMs: 2000 }));
  const isReset = (e: NodeJS.ErrnoException): boolean => e.code === 'ECONNRESET';

  // Backend resets: the client must not take it for a clean end of the stream.
  const a = await dial(t, proxy.port);
  a.socket.write('x');
  const ba = await backend.next();
  await new Promise((r) => ba.socket.once('data', r));
  ba.socket.resetAndDestroy();
  await assert.rejects(a.ended, isReset);
  const ra = await proxy.results[0];
  assert.equal(ra?.outcome, 'error');
  assert.equal(ra?.reason, 'ECONNRESET');

  // Client resets: the backend sees a reset too.
  const b = await dial(t, proxy.port);
  b.socket.write('y');
  const bb = await backend.next();
  await new Promise((r) => bb.socket.once('data', r));
  b.socket.resetAndDestroy();
  await assert.rejects(bb.ended, isReset);
  const rb = await proxy.results[1];
  assert.equal(rb?.outcome, 'error');
  assert.equal(rb?.reason, 'ECONNRESET');
  assert.equal(rb?.bytesFromClient, 1);
  await assertNothingOpen(proxy, backend.server);
});

test('a client already gone is an error, not a connection attempt', LIMIT, async (t) => {
  const backend = await backendServer(t, { port: 0, host: '127.0.0.1' });
  const proxy = await startProxy(
    t,
    () => ({ target: inet(portOf(backend.server)), connectTimeoutMs: 2000 }),
    async (s) => {
      s.destroy();
    },
  );
  const client = await dial(t, proxy.port);
  await client.ended;
  const r = await proxy.results[0];
  assert.equal(r?.outcome, 'error');
  assert.equal(await connections(backend.server), 0);
});

test('a client socket the daemon destroys (reload, stop) takes the backend with it, and forward() resolves', LIMIT, async (t) => {
  const backend = await backendServer(t, { port: 0, host: '127.0.0.1' });
  const proxy = await startProxy(t, () => ({ target: inet(portOf(backend.server)), connectTimeoutMs: 2000 }));
  const client = await dial(t, proxy.port);
  client.socket.write('hello');
  const far = await backend.next();
  await new Promise<void>((resolve) => far.socket.once('data', () => resolve()));
  // What Listener.close() does to every socket it accepted.
  proxy.accepted[0]!.destroy();
  const result = await proxy.results[0]!;
  assert.equal(result.bytesFromClient, 5);
  await far.closed;
  await assertNothingOpen(proxy, backend.server);
});
