// Slow and idle clients (issue 8): thousands of connections that never finish the TCPMUX
// line, opened while normal clients keep doing handshakes. xinetd and inetutils never time
// such a client out (each holds a forked process or a queue slot for as long as it likes,
// ../shared/reference/peers.md §5); tpies holds a socket and a timer per client and closes
// it after `tcpmux-timeout`. Figures: the normal clients' handshake p99 at the idle baseline
// and under the slow load, how many slow connections the timeout closed and how long after
// they connected, and the daemon's RSS and CPU.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../helpers/daemon.js';
import { BIN, startDaemonProcess } from './daemon-process.js';
import { FULL, record, size } from './lib.js';

const SLOW = size(500, 10_000);
const NORMAL = size(20, 100);
// Each normal client pauses between handshakes, so together they offer about 100 conn/s,
// a third of what one tpies hands off per second (docs/performance.md): the baseline is then
// a latency, not the depth of a queue of clients waiting for the event loop.
const THINK_MS = size(200, 1000);
// Long enough at full size for every slow client to be open at the same time.
const TIMEOUT_S = size(2, 8);
const OPEN_RATE = 2000; // slow connections per second
const WARMUP_MS = size(500, 1500);
// Baseline windows alternate with slow-load rounds: baseline, load, …, baseline. One round at
// full size: each wave of 10,000 leaves RSS where it peaked (malloc keeps what it got; the
// live heap after a full GC stays at 30-47 MB), so a second wave measures reuse, not the 10,000.
const ROUNDS = size(2, 1);
const BASELINE_MS = size(1000, 3000);
// Loopback p99 of a few ms is mostly scheduling noise on 2 shared cores: allow this much
// on top of 2× the baseline. Only the full run (npm run test:reliability) holds the daemon
// to it. The short run is part of `npm test`, which runs two test files at once on CI's
// shared cores: a few hundred handshakes there, whose p99 is the fifth-worst, measure the
// neighbours as much as tpies (speed targets belong in benchmarks, not in CI tests), so it
// records the latency and checks the rest: closes, failures, RSS, the daemon alive.
const FLOOR_MS = 5;
const RSS_LIMIT_MB = 200;
// How late after the timeout a close may come (10,000 timers firing over a few seconds).
const CLOSE_SLACK_MS = size(2000, 5000);

const CONFIG = `
component tcpmux { socket inet://127.0.0.1:0; service tcpmux; flags internal; tcpmux-timeout ${TIMEOUT_S}; }
component echo { tcpmux-master tcpmux; service echo; flags tcpmuxplus; command /bin/cat; }
`;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (n: number, digits = 1): number => Number(n.toFixed(digits));

// TcpExt ListenOverflows: connections the kernel dropped because an accept queue was full
// (on any socket of this network namespace: other tests on the machine count too).
function listenOverflows(): number {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const header = lines.findIndex((l) => l.startsWith('TcpExt:'));
  const names = lines[header]?.split(' ') ?? [];
  const values = lines[header + 1]?.split(' ') ?? [];
  return Number(values[names.indexOf('ListenOverflows')] ?? Number.NaN);
}

// One normal client: `echo` CRLF and a payload in one write, then FIN. The handshake is the
// time from connect() to the `+` line; the exchange succeeded when exactly the reply and the
// payload came back before the server's FIN.
function normalExchange(port: number, sockets: Set<Socket>): Promise<{ handshakeMs: number; ok: boolean }> {
  return new Promise((resolve) => {
    const started = performance.now();
    let handshakeMs = Number.NaN;
    const chunks: Buffer[] = [];
    const socket = connect({ host: '127.0.0.1', port });
    sockets.add(socket);
    const timer = setTimeout(() => done(false), 10_000);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sockets.delete(socket);
      socket.destroy();
      resolve({ handshakeMs, ok });
    };
    socket.on('connect', () => socket.end('echo\r\nping'));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (Number.isNaN(handshakeMs) && Buffer.concat(chunks).includes('\r\n')) handshakeMs = performance.now() - started;
    });
    socket.on('end', () => done(Buffer.concat(chunks).toString('latin1') === '+\r\nping'));
    socket.on('error', () => done(false));
  });
}

interface SlowReport {
  readonly event: 'opened' | 'done';
  readonly peakHeld: number;
  readonly openMs?: number;
  readonly connected?: number;
  readonly closedByServer?: number;
  readonly resets?: number;
  /** Each closed connection's ms from connect to close, sorted. */
  readonly after?: number[];
  /** CPU time the generator used, ms. */
  readonly cpuMs?: number;
}

// The slow clients run in a process of their own (test/fixtures/bin/slow-clients.js): with
// 10,000 sockets in this one, its own event-loop lag would show up as handshake latency.
function startSlowClients(t: { after(fn: () => void): void }, port: number, waitMs: number): { opened: Promise<SlowReport>; done: Promise<SlowReport> } {
  const child = spawn(process.execPath, [path.join(BIN, 'slow-clients.js'), '127.0.0.1', String(port), String(SLOW), String(OPEN_RATE), String(waitMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const reports = new Map<string, (r: SlowReport) => void>();
  const waitFor = (event: string): Promise<SlowReport> =>
    new Promise((resolve, reject) => {
      reports.set(event, resolve);
      child.once('exit', (code) => reject(new Error(`slow-clients.js exited (${String(code)}) before "${event}"`)));
    });
  const opened = waitFor('opened');
  const done = waitFor('done');
  opened.catch(() => undefined);
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const report = JSON.parse(line) as SlowReport;
    reports.get(report.event)?.(report);
  });
  return { opened, done };
}

test('slow clients: normal handshakes keep their latency, the timeout closes every idle client, RSS bounded', { timeout: size(30_000, 180_000) }, async (t) => {
  const tpies = await startDaemonProcess(t, { config: CONFIG, keep: (l) => l.msg !== 'connection' || l['outcome'] !== 'served' });
  const port = tpies.port('tcpmux');
  const rssIdle = tpies.rssMb();

  const sockets = new Set<Socket>();
  t.after(() => sockets.forEach((s) => s.destroy()));
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  t.after(() => lag.disable());

  // The normal clients: a closed loop with pauses, each latency tagged with the phase it
  // started in.
  let phase: 'warmup' | 'baseline' | 'load' | 'stop' = 'warmup';
  const running = (): boolean => phase !== 'stop';
  const latencies = { baseline: [] as number[], load: [] as number[] };
  let failures = 0;
  const workers = Array.from({ length: NORMAL }, async () => {
    while (running()) {
      const at = phase;
      const r = await normalExchange(port, sockets);
      if (!r.ok) failures++;
      else if (at === 'baseline' || at === 'load') latencies[at].push(r.handshakeMs);
      if (running()) await sleep(THINK_MS * (0.5 + Math.random()));
    }
  });

  await sleep(WARMUP_MS);
  const cpuAt = (): number => tpies.cpuSeconds();
  let cpuBaselineS = 0;
  let baselineMs = 0;
  let cpuLoadS = 0;
  let loadMs = 0;
  let baselineLagP99 = 0;
  let loadLagP99 = 0;
  const baselineWindow = async (): Promise<void> => {
    phase = 'baseline';
    lag.reset();
    const cpu = cpuAt();
    await sleep(BASELINE_MS);
    cpuBaselineS += cpuAt() - cpu;
    baselineMs += BASELINE_MS;
    baselineLagP99 = Math.max(baselineLagP99, lag.percentile(99) / 1e6);
  };

  // Baseline and slow load alternate, ending with a baseline: the machine is shared, and a
  // burst of someone else's work should fall on both sides rather than on one.
  const overflowsBefore = listenOverflows();
  let rssBaseline = 0;
  let rssPeak = 0;
  const sampler = setInterval(() => {
    if (phase === 'load' && tpies.running()) rssPeak = Math.max(rssPeak, tpies.rssMb());
  }, 100);
  t.after(() => clearInterval(sampler));
  const rounds: SlowReport[] = [];
  let peakHeld = Number.POSITIVE_INFINITY;
  let openMs = 0;
  for (let round = 0; round < ROUNDS; round++) {
    await baselineWindow();
    rssBaseline ||= tpies.rssMb();
    // The slow load: a third send nothing, a third part of a name, a third dribble a byte
    // every 500 ms and never end the line (the timeout counts from accept, so dribbling does
    // not keep a connection open).
    phase = 'load';
    lag.reset();
    const loadStarted = performance.now();
    const cpu = cpuAt();
    const waitMs = (SLOW / OPEN_RATE) * 1000 + TIMEOUT_S * 1000 + CLOSE_SLACK_MS + 5000;
    const slow = startSlowClients(t, port, waitMs);
    const opened = await slow.opened;
    rounds.push(await slow.done);
    loadMs += performance.now() - loadStarted;
    cpuLoadS += cpuAt() - cpu;
    loadLagP99 = Math.max(loadLagP99, lag.percentile(99) / 1e6);
    peakHeld = Math.min(peakHeld, opened.peakHeld);
    openMs = Math.max(openMs, opened.openMs ?? Number.NaN);
  }
  await baselineWindow();
  clearInterval(sampler);
  phase = 'stop';
  await Promise.all(workers);
  const rssAfter = tpies.rssMb();
  const overflows = listenOverflows() - overflowsBefore;
  const cpuBaselinePct = (cpuBaselineS / (baselineMs / 1000)) * 100;
  const cpuLoadPct = (cpuLoadS / (loadMs / 1000)) * 100;
  const generatorCpuMs = rounds.reduce((sum, r) => sum + (r.cpuMs ?? Number.NaN), 0);

  const slowTotal = SLOW * ROUNDS;
  const timeoutEvents = (): number => tpies.entries({ msg: 'connection' }).filter((l) => l['outcome'] === 'timeout').length;
  await waitFor(() => timeoutEvents() >= slowTotal, 2000, 'audit events').catch(() => undefined);
  const timeouts = timeoutEvents();
  const connected = rounds.reduce((sum, r) => sum + (r.connected ?? 0), 0);
  const closedByServer = rounds.reduce((sum, r) => sum + (r.closedByServer ?? 0), 0);
  const resets = rounds.reduce((sum, r) => sum + (r.resets ?? 0), 0);
  const after = rounds.flatMap((r) => r.after ?? []).sort((a, b) => a - b);
  const base = [...latencies.baseline].sort((a, b) => a - b);
  const load = [...latencies.load].sort((a, b) => a - b);
  const baseP99 = percentile(base, 99);
  const loadP99 = percentile(load, 99);
  const limitMs = 2 * baseP99 + FLOOR_MS;
  const closeLimitMs = TIMEOUT_S * 1000 + CLOSE_SLACK_MS;
  const latencyOk = loadP99 <= limitMs;
  const latencyChecked = FULL;
  // The client notes its connect a little after the daemon's accept, so allow 250 ms early.
  const closedOk = closedByServer === slowTotal && (after.at(-1) ?? Infinity) <= closeLimitMs && (after[0] ?? 0) >= TIMEOUT_S * 1000 - 250;
  const rssOk = rssPeak < RSS_LIMIT_MB;
  const pass = (latencyOk || !latencyChecked) && closedOk && rssOk && failures === 0 && tpies.running();

  record(t, {
    scenario: 'slow clients',
    figures: {
      'slow connections, per round': SLOW,
      rounds: ROUNDS,
      'normal clients': NORMAL,
      'normal client pause between handshakes (ms)': THINK_MS,
      'slow connections open at once (peak, worst round)': peakHeld,
      'time to open them (s, worst round)': round(openMs / 1000, 2),
      'listen overflows, machine-wide': overflows,
      'baseline handshakes': base.length,
      'baseline handshake p50 (ms)': round(percentile(base, 50), 2),
      'baseline handshake p99 (ms)': round(baseP99, 2),
      'handshakes under slow load': load.length,
      'handshake p50 under slow load (ms)': round(percentile(load, 50), 2),
      'handshake p99 under slow load (ms)': round(loadP99, 2),
      'normal client failures': failures,
      'measuring process event-loop lag p99, worst window, baseline / load (ms)': `${round(baselineLagP99)} / ${round(loadLagP99)}`,
      'tcpmux-timeout (s)': TIMEOUT_S,
      'slow connections closed by the daemon': closedByServer,
      'of which by reset': resets,
      'audit events with outcome timeout': timeouts,
      'closed after, min (ms)': after[0] ?? Number.NaN,
      'closed after, p50 (ms)': percentile(after, 50),
      'closed after, max (ms)': after.at(-1) ?? Number.NaN,
      'daemon CPU, baseline / slow load (% of one core)': `${round(cpuBaselinePct, 0)} / ${round(cpuLoadPct, 0)}`,
      // It shares the 2 cores with the daemon during the load only.
      'slow-client generator CPU (% of one core)': round((generatorCpuMs / loadMs) * 100, 0),
      'daemon RSS idle (MB)': round(rssIdle),
      'daemon RSS after the baseline (MB)': round(rssBaseline),
      'daemon RSS peak (MB)': round(rssPeak),
      'daemon RSS after (MB)': round(rssAfter),
    },
    condition: `${latencyChecked ? '' : '(short run: latency recorded, not checked) '}handshake p99 under load ≤ 2× baseline + ${FLOOR_MS} ms; every slow connection closed by the daemon between ${TIMEOUT_S} s and ${closeLimitMs / 1000} s after connecting; RSS peak < ${RSS_LIMIT_MB} MB; no normal client failed; daemon running`,
    pass,
  });

  assert.ok(tpies.running(), 'the daemon is running');
  assert.equal(failures, 0, 'normal clients that failed');
  assert.ok(base.length >= NORMAL && load.length >= NORMAL, `enough samples (baseline ${base.length}, load ${load.length})`);
  assert.equal(connected, slowTotal, 'every slow client connected');
  assert.ok(peakHeld >= SLOW * 0.9, `at least 90% of the slow connections open at once (peak ${peakHeld})`);
  assert.equal(closedByServer, slowTotal, 'slow connections the daemon closed');
  assert.equal(timeouts, slowTotal, 'audit events with outcome "timeout"');
  assert.ok(closedOk, `closed between ${after[0]} and ${after.at(-1)} ms after connecting (timeout ${TIMEOUT_S} s)`);
  assert.ok(rssOk, `daemon RSS peak ${round(rssPeak)} MB`);
  if (latencyChecked) assert.ok(latencyOk, `handshake p99 under slow load ${round(loadP99, 2)} ms > 2 × ${round(baseP99, 2)} + ${FLOOR_MS} ms`);
});
