// TCPMUX (RFC 1078) load generator, after the peers' tcpmux-load.mjs
// (../shared/reference/peers.md §2). For each connection: connect, write `SERVICE\r\n`, read
// the reply line; on `+` write PAYLOAD bytes, read them back and compare, half-close and
// wait for the server's FIN. Timings are measured from the connect() call: connect,
// handshake (the whole reply line has arrived), exchange (the echo is complete) and closed
// (the server's FIN arrived). `-` replies count as errors, with their own latency. A NUL
// byte right after the reply line (xinetd sends `+Go\r\n\0`) is skipped and counted.
//
// Bounded: stops at TOTAL connections or when the time limit passes, whichever is first;
// every connection has its own timeout, and a hard stop follows at limit + timeout + 2 s.
// Loopback only (127.0.0.0/8).
//
// CLI: node --import tsx bench/tcpmux-load.ts HOST PORT SERVICE TOTAL CONCURRENCY PAYLOAD
//        [--time-limit=S (60)] [--timeout=MS (10000)]
// prints one JSON object (LoadResult) on stdout.
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { type Percentiles, percentiles } from './lib/report.js';

export interface LoadOptions {
  readonly host: string;
  readonly port: number;
  readonly service: string;
  readonly total: number;
  readonly concurrency: number;
  readonly payload: number;
  readonly timeLimitS: number;
  readonly timeoutMs: number;
}

export interface LoadResult {
  readonly options: LoadOptions;
  readonly started: number;
  readonly ok: number;
  /** Connections that did not complete (negative replies included), by reason. */
  readonly errors: Record<string, number>;
  readonly errorCount: number;
  readonly negativeReplies: number;
  readonly elapsedMs: number;
  /** Completed connections per second over the whole run. */
  readonly connPerSec: number;
  readonly timeLimitHit: boolean;
  readonly hardStop: boolean;
  readonly latencyMs: {
    readonly connect: Percentiles;
    readonly handshake: Percentiles;
    readonly exchange: Percentiles;
    readonly closed: Percentiles;
    readonly negativeReply: Percentiles;
  };
  readonly anomalies: { readonly nul_after_reply: number };
}

type Outcome =
  | { readonly kind: 'ok'; readonly connect: number; readonly handshake: number; readonly exchange: number; readonly closed: number; readonly nul: boolean }
  | { readonly kind: 'negative'; readonly reply: number }
  | { readonly kind: 'error'; readonly reason: string };

function isLoopback(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

// Payload bytes never include NUL, so a NUL first byte after the reply is unambiguous.
function makePayload(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = 0x61 + (i % 26);
  return b;
}

function oneConnection(o: LoadOptions, payload: Buffer, live: Set<net.Socket>): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const since = (): number => performance.now() - t0;
    const socket = net.connect({ host: o.host, port: o.port, allowHalfOpen: true });
    live.add(socket);
    socket.setNoDelay(true);
    let phase: 'connect' | 'reply' | 'echo' | 'fin' = 'connect';
    let line: Buffer = Buffer.alloc(0);
    const echo: Buffer[] = [];
    let echoed = 0;
    let nul = false;
    let connectMs = 0;
    let handshakeMs = 0;
    let exchangeMs = 0;
    let done = false;
    const finish = (outcome: Outcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      live.delete(socket);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'error', reason: `timeout-${phase}` }), o.timeoutMs);
    const onEcho = (chunk: Buffer): void => {
      if (echoed === 0 && !nul && chunk[0] === 0) {
        nul = true;
        chunk = chunk.subarray(1);
      }
      if (chunk.length === 0) return;
      echo.push(chunk);
      echoed += chunk.length;
      if (echoed < payload.length) return;
      if (echoed > payload.length || !Buffer.concat(echo).equals(payload)) return finish({ kind: 'error', reason: 'echo-mismatch' });
      exchangeMs = since();
      phase = 'fin';
      socket.end();
    };
    socket.once('connect', () => {
      connectMs = since();
      phase = 'reply';
      socket.write(`${o.service}\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      if (phase === 'reply') {
        line = line.length ? Buffer.concat([line, chunk]) : chunk;
        const nl = line.indexOf(0x0a);
        if (nl < 0) {
          if (line.length > 1024) finish({ kind: 'error', reason: 'reply-too-long' });
          return;
        }
        handshakeMs = since();
        if (line[0] !== 0x2b /* + */) return finish({ kind: 'negative', reply: handshakeMs });
        const rest = line.subarray(nl + 1);
        phase = 'echo';
        socket.write(payload);
        if (rest.length) onEcho(rest);
      } else if (phase === 'echo') {
        onEcho(chunk);
      } else if (phase === 'fin') {
        finish({ kind: 'error', reason: 'data-after-echo' });
      }
    });
    socket.on('end', () => {
      if (phase === 'fin') finish({ kind: 'ok', connect: connectMs, handshake: handshakeMs, exchange: exchangeMs, closed: since(), nul });
      else finish({ kind: 'error', reason: `closed-during-${phase}` });
    });
    socket.on('error', (e: NodeJS.ErrnoException) => finish({ kind: 'error', reason: e.code ?? 'error' }));
    socket.on('close', () => finish({ kind: 'error', reason: `closed-during-${phase}` }));
  });
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  if (!isLoopback(o.host)) throw new Error(`refusing non-loopback host ${o.host} (127.0.0.0/8 only)`);
  const payload = makePayload(o.payload);
  const live = new Set<net.Socket>();
  const lat = { connect: [] as number[], handshake: [] as number[], exchange: [] as number[], closed: [] as number[], negativeReply: [] as number[] };
  const errors: Record<string, number> = {};
  let started = 0;
  let ok = 0;
  let nulAfterReply = 0;
  let negative = 0;
  let timeLimitHit = false;
  const t0 = performance.now();
  const deadline = t0 + o.timeLimitS * 1000;
  const worker = async (): Promise<void> => {
    while (started < o.total) {
      if (performance.now() >= deadline) {
        timeLimitHit = true;
        return;
      }
      started++;
      const r = await oneConnection(o, payload, live);
      if (r.kind === 'ok') {
        ok++;
        lat.connect.push(r.connect);
        lat.handshake.push(r.handshake);
        lat.exchange.push(r.exchange);
        lat.closed.push(r.closed);
        if (r.nul) nulAfterReply++;
      } else if (r.kind === 'negative') {
        negative++;
        errors['negative-reply'] = (errors['negative-reply'] ?? 0) + 1;
        lat.negativeReply.push(r.reply);
      } else {
        errors[r.reason] = (errors[r.reason] ?? 0) + 1;
      }
    }
  };
  let hardStop = false;
  let hardTimer: NodeJS.Timeout | undefined;
  const hard = new Promise<void>((resolve) => {
    hardTimer = setTimeout(() => {
      hardStop = true;
      for (const s of live) s.destroy();
      resolve();
    }, o.timeLimitS * 1000 + o.timeoutMs + 2000);
  });
  await Promise.race([Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker)), hard]);
  clearTimeout(hardTimer);
  const elapsedMs = performance.now() - t0;
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  return {
    options: o,
    started,
    ok,
    errors,
    errorCount,
    negativeReplies: negative,
    elapsedMs,
    connPerSec: elapsedMs > 0 ? (ok / elapsedMs) * 1000 : 0,
    timeLimitHit,
    hardStop,
    latencyMs: {
      connect: percentiles(lat.connect),
      handshake: percentiles(lat.handshake),
      exchange: percentiles(lat.exchange),
      closed: percentiles(lat.closed),
      negativeReply: percentiles(lat.negativeReply),
    },
    anomalies: { nul_after_reply: nulAfterReply },
  };
}

export function parseLoadArgs(argv: readonly string[]): LoadOptions {
  const positional = argv.filter((a) => !a.startsWith('--'));
  const flag = (name: string, fallback: number): number => {
    const hit = argv.find((a) => a.startsWith(`--${name}=`));
    return hit === undefined ? fallback : Number(hit.slice(name.length + 3));
  };
  const [host, port, service, total, concurrency, payload] = positional;
  if (payload === undefined || host === undefined || port === undefined || service === undefined || total === undefined || concurrency === undefined) {
    throw new Error('usage: tcpmux-load.ts HOST PORT SERVICE TOTAL CONCURRENCY PAYLOAD [--time-limit=S] [--timeout=MS]');
  }
  const o: LoadOptions = {
    host,
    port: Number(port),
    service,
    total: Number(total),
    concurrency: Number(concurrency),
    payload: Number(payload),
    timeLimitS: flag('time-limit', 60),
    timeoutMs: flag('timeout', 10_000),
  };
  for (const [k, v] of Object.entries(o)) if (typeof v === 'number' && !(Number.isFinite(v) && v >= 0)) throw new Error(`bad ${k}: ${v}`);
  return o;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const result = await runLoad(parseLoadArgs(process.argv.slice(2)));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (error) {
    process.stderr.write(`tcpmux-load: ${(error as Error).message}\n`);
    process.exitCode = 2;
  }
}
