// sniff-http: connections per second for short HTTP requests (one request per connection,
// `Connection: close`) straight to a node HTTP server, and through tpies — a TCPMUX master
// whose `match http` subordinate forwards to that server — with 8 clients in flight.
// The two paths alternate in blocks, so machine drift hits both alike; the ratio is the
// median of per-block ratios.
import net from 'node:net';
import type { Benchmark } from './lib/context.js';
import { startTpies } from './lib/daemon.js';
import { freePort, isListening, pollUntil, readStat, ticksPerSecond } from './lib/proc.js';
import { fmt, median, percentiles, table } from './lib/report.js';
import { startBenchPeer } from './sniff-forward.js';

const CONCURRENCY = 8;
const REQUEST = 'GET / HTTP/1.1\r\nHost: bench.example\r\nConnection: close\r\n\r\n';
const REQUEST_TIMEOUT_MS = 10_000;

// One connection, one request; resolves with the latency, rejects on anything but a 200.
function request(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('request timed out'));
    }, REQUEST_TIMEOUT_MS);
    socket.setEncoding('latin1');
    socket.once('connect', () => socket.write(REQUEST));
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      if (!text.startsWith('HTTP/1.1 200')) return reject(new Error(`unexpected answer: ${JSON.stringify(text.slice(0, 40))}`));
      resolve(performance.now() - t0);
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

// `count` requests with CONCURRENCY in flight: connections per second and latencies.
async function block(port: number, count: number): Promise<{ perSecond: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      latencies.push(await request(port));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { perSecond: count / ((performance.now() - t0) / 1000), latencies };
}

export const sniffHttp: Benchmark = {
  name: 'sniff-http',
  description: 'connections/s of one-request HTTP connections direct vs through a tpies `match http` → forward',
  async run(ctx) {
    const blocks = ctx.quick ? 6 : 12;
    const perBlock = ctx.quick ? 300 : 1000;
    const backend = await startBenchPeer(ctx, 'http');
    let tpiesStop: (() => Promise<void>) | undefined;
    try {
      const muxPort = await freePort();
      const config = [
        `component mux { socket inet://127.0.0.1:${muxPort}; service tcpmux; flags internal; }`,
        `component web { tcpmux-master mux; match http; forward "inet://127.0.0.1:${backend.port}"; }`,
        '',
      ].join('\n');
      const tpies = startTpies({ root: ctx.root, dir: ctx.tmp, name: 'sniff-http', configText: config, cleanup: ctx.cleanup });
      tpiesStop = () => tpies.stop();
      if (!(await pollUntil(() => tpies.hasExited() || isListening(muxPort), 30_000)) || tpies.hasExited()) throw new Error(`tpies did not start:\n${tpies.logTail()}`);
      const paths = [
        { name: 'direct', port: backend.port },
        { name: 'tpies (match http → forward)', port: muxPort },
      ] as const;
      for (const p of paths) await block(p.port, 100);
      const rates = new Map<string, number[]>(paths.map((p) => [p.name, []]));
      const latencies = new Map<string, number[]>(paths.map((p) => [p.name, []]));
      const before = readStat(tpies.pid)?.selfTicks ?? 0;
      for (let b = 0; b < blocks; b++) {
        for (let i = 0; i < paths.length; i++) {
          const p = paths[(b + i) % paths.length]!;
          const r = await block(p.port, perBlock);
          rates.get(p.name)!.push(r.perSecond);
          latencies.get(p.name)!.push(...r.latencies);
        }
      }
      const daemonMs = (((readStat(tpies.pid)?.selfTicks ?? 0) - before) * 1000) / ticksPerSecond();
      ctx.out(`${blocks} blocks × ${perBlock} connections per path, ${CONCURRENCY} in flight, one request each (Connection: close); backend: node http`);
      ctx.out(
        table(
          ['path', 'conn/s median', 'best', 'worst', 'latency p50 ms', 'p99 ms'],
          paths.map((p) => {
            const list = rates.get(p.name)!;
            const lat = percentiles(latencies.get(p.name)!);
            return [p.name, fmt(median(list), 0), fmt(Math.max(...list), 0), fmt(Math.min(...list), 0), fmt(lat.p50, 2), fmt(lat.p99, 2)];
          }),
        ),
      );
      const direct = rates.get('direct')!;
      const ratios = rates.get(paths[1].name)!.map((v, i) => v / direct[i]!);
      ctx.out('');
      ctx.out(`RATIO tpies/direct conn/s ${fmt(median(ratios), 3)} (range ${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)}); tpies CPU ${fmt(daemonMs / (blocks * perBlock), 3)} ms per forwarded connection`);
    } finally {
      await tpiesStop?.();
      await backend.stop();
    }
  },
};
