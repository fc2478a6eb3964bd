// sniff-forward: bulk throughput one way (client → backend) through `forward` (the proxy side
// of protocol sniffing), against a direct connection to the same backend and against the
// naive Node proxy (`client.pipe(backend); backend.pipe(client)`).
//   direct   this process → the sink
//   forward  this process → forward() in its own node process → the sink
//   pipe     this process → the naive pipe proxy in its own node process → the sink
//   tpies    this process → the tpies daemon (a TCPMUX master, `match prefix` → `forward`)
//            → the sink: what an operator gets, sniffing included
// The sink is a node process too (bench/lib/forward-proxy.ts sink): it counts bytes until
// EOF and answers with the count, so the clock runs from connect to the count's arrival.
// The sender writes one 4 MiB buffer repeatedly, with backpressure. Paths alternate within a
// round (the order rotates each round) and the target checks the median of the per-round
// ratios, which cancels most of this machine's drift.
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Benchmark, BenchContext } from './lib/context.js';
import { startTpies } from './lib/daemon.js';
import { sendBytes } from './lib/send.js';
import { freePort, isListening, pollUntil, readStat, ticksPerSecond } from './lib/proc.js';
import { fmt, median, table, targetLine } from './lib/report.js';

const CHUNK = 4 * 1024 * 1024;
const TARGET_RATIO = 0.9;
const START_TIMEOUT_MS = 30_000;
const TRANSFER_TIMEOUT_MS = 120_000;

interface Peer {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

// Start one bench/lib/forward-proxy.ts process and wait for its port.
export async function startBenchPeer(ctx: BenchContext, mode: 'sink' | 'forward' | 'pipe' | 'http', targetPort?: number): Promise<Peer> {
  const script = path.join(ctx.root, 'bench/lib/forward-proxy.ts');
  const args = ['--import', 'tsx', script, mode, ...(targetPort === undefined ? [] : [String(targetPort)])];
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ctx.root, stdio: ['pipe', 'pipe', 'inherit'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start the ${mode} process`);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (): void => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin?.end();
    const timer = setTimeout(kill, 2000);
    await exited;
    clearTimeout(timer);
  };
  const unregister = ctx.cleanup.add(`sniff-forward ${mode} (pid ${pid})`, stop, kill);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} process did not start listening`)), START_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const m = /^LISTENING (\d+)$/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      lines.close();
      resolve(Number(m[1]));
    });
    child.once('exit', (code, signal) => reject(new Error(`${mode} process exited (${code ?? signal}) before listening`)));
  });
  return {
    port,
    pid,
    stop: async () => {
      await stop();
      unregister();
    },
  };
}

// Send `bytes`, half-close, wait for the sink's count; MB/s from connect to count.
function transfer(port: number, bytes: number, chunk: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let text = '';
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail('transfer timed out'), TRANSFER_TIMEOUT_MS);
    socket.once('connect', () => sendBytes(socket, bytes, chunk));
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => {
      const count = Number(text.trim());
      const ms = performance.now() - t0;
      if (count !== bytes) return fail(`the sink counted ${text.trim()} bytes, expected ${bytes}`);
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(bytes / 1024 / 1024 / (ms / 1000));
    });
    socket.on('error', (e) => fail(e.message));
  });
}

export const sniffForward: Benchmark = {
  name: 'sniff-forward',
  description: 'bytes/s one way through forward() vs a direct connection and a naive pipe proxy',
  async run(ctx) {
    const mb = ctx.quick ? 64 : 256;
    const bytes = mb * 1024 * 1024;
    const rounds = ctx.quick ? 7 : 15;
    const chunk = Buffer.alloc(CHUNK, 0x78);
    const started: Peer[] = [];
    try {
      const sink = await startBenchPeer(ctx, 'sink');
      started.push(sink);
      const proxied = await startBenchPeer(ctx, 'forward', sink.port);
      started.push(proxied);
      const naive = await startBenchPeer(ctx, 'pipe', sink.port);
      started.push(naive);
      // The sender's bytes are all 'x': the daemon's rule matches the first four.
      const muxPort = await freePort();
      const config = [
        `component mux { socket inet://127.0.0.1:${muxPort}; service tcpmux; flags internal; }`,
        `component bulk { tcpmux-master mux; match prefix "xxxx"; forward "inet://127.0.0.1:${sink.port}"; }`,
        '',
      ].join('\n');
      const tpies = startTpies({ root: ctx.root, dir: ctx.tmp, name: 'sniff-forward', configText: config, cleanup: ctx.cleanup });
      started.push({ port: muxPort, pid: tpies.pid, stop: () => tpies.stop() });
      if (!(await pollUntil(() => tpies.hasExited() || isListening(muxPort), START_TIMEOUT_MS)) || tpies.hasExited()) throw new Error(`tpies did not start:\n${tpies.logTail()}`);
      const paths = [
        { name: 'direct', port: sink.port, pid: undefined },
        { name: 'forward', port: proxied.port, pid: proxied.pid },
        { name: 'pipe (naive)', port: naive.port, pid: naive.pid },
        { name: 'tpies (match → forward)', port: muxPort, pid: tpies.pid },
      ] as const;
      for (const p of paths) await transfer(p.port, 16 * 1024 * 1024, chunk);
      const results = new Map<string, number[]>(paths.map((p) => [p.name, []]));
      // The proxy's own CPU (user + system) while it relays: less noisy than throughput.
      const proxyTicks = new Map<string, number>();
      const ticks = (pid: number | undefined): number => (pid === undefined ? 0 : (readStat(pid)?.selfTicks ?? 0));
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < paths.length; i++) {
          const p = paths[(r + i) % paths.length];
          if (!p) continue;
          const before = ticks(p.pid);
          results.get(p.name)?.push(await transfer(p.port, bytes, chunk));
          proxyTicks.set(p.name, (proxyTicks.get(p.name) ?? 0) + ticks(p.pid) - before);
        }
      }
      const gigabytes = (rounds * mb) / 1024;
      const perRound = (name: string): number[] => {
        const x = results.get(name) ?? [];
        const d = results.get('direct') ?? [];
        return x.map((v, i) => v / (d[i] ?? Number.NaN)).filter(Number.isFinite);
      };
      ctx.out(`${mb} MB per transfer, ${rounds} rounds, paths alternating; sender: this process, sink and proxies: node processes`);
      ctx.out(
        table(
          ['path', 'MB/s median', 'best', 'worst', '× direct (median of rounds)', 'range', 'proxy CPU ms per GB'],
          paths.map((p) => {
            const list = results.get(p.name) ?? [];
            const ratios = perRound(p.name);
            return [
              p.name,
              fmt(median(list), 0),
              fmt(Math.max(...list), 0),
              fmt(Math.min(...list), 0),
              fmt(median(ratios), 3),
              `${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)}`,
              p.pid === undefined ? '-' : fmt(((proxyTicks.get(p.name) ?? 0) * 1000) / ticksPerSecond() / gigabytes, 0),
            ];
          }),
        ),
      );
      const daemonRatios = perRound('tpies (match → forward)');
      const forwardRatios = perRound('forward');
      const pipeRatios = perRound('pipe (naive)');
      const r = forwardRatios.length ? median(forwardRatios) : undefined;
      const fp = (results.get('forward') ?? []).map((v, i) => v / ((results.get('pipe (naive)') ?? [])[i] ?? Number.NaN)).filter(Number.isFinite);
      ctx.out('');
      ctx.out(`(${os.availableParallelism()} CPUs for sender, sink and proxy; a proxy in user space copies every byte twice, CPU the direct path does not spend)`);
      ctx.out(`RATIO tpies/direct ${fmt(daemonRatios.length ? median(daemonRatios) : undefined, 3)}; forward/direct ${fmt(r, 3)}; pipe/direct ${fmt(pipeRatios.length ? median(pipeRatios) : undefined, 3)}; forward/pipe ${fmt(fp.length ? median(fp) : undefined, 2)}`);
      const rd = daemonRatios.length ? median(daemonRatios) : undefined;
      const target = { text: `tpies forward/direct throughput ≥ ${TARGET_RATIO}`, pass: rd === undefined ? undefined : rd >= TARGET_RATIO, measured: `ratio ${fmt(rd, 3)} (forward() alone ${fmt(r, 3)})` };
      ctx.target(target);
      ctx.out(targetLine({ ...target, benchmark: 'sniff-forward' }));
    } finally {
      for (const p of started.reverse()) await p.stop();
    }
  },
};
