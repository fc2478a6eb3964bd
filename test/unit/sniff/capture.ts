// Helpers for the sniffing tests: a server that records what a real client sends first, a
// real client process killed by pid in t.after, and every-prefix checks.
import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, type Socket, createServer } from 'node:net';
import type { TestContext } from 'node:test';

export interface Recorder {
  readonly port: number;
  /** The bytes of the first connection, once `enough` said so, the client closed, or the time ran out. */
  readonly first: Promise<Buffer>;
}

export interface RecorderOptions {
  /** Stop reading once this says the bytes are enough. */
  readonly enough: (bytes: Buffer) => boolean;
  /** Written before closing, once the bytes are enough. */
  readonly reply?: string;
  readonly timeoutMs?: number;
}

// Listens on 127.0.0.1:0; closed (with every accepted socket) in t.after.
export async function startRecorder(t: TestContext, options: RecorderOptions): Promise<Recorder> {
  const sockets = new Set<Socket>();
  let resolveFirst: (b: Buffer) => void = () => {};
  const first = new Promise<Buffer>((resolve) => (resolveFirst = resolve));
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolveFirst(Buffer.concat(chunks));
      if (options.reply !== undefined) socket.end(options.reply);
      else socket.destroy();
    };
    const timer = setTimeout(finish, options.timeoutMs ?? 4000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (options.enough(Buffer.concat(chunks))) finish();
    });
    socket.on('end', finish);
    socket.on('close', finish);
  });
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return { port: (server.address() as AddressInfo).port, first };
}

// A real client program; killed by its pid in t.after if still running, and waited for.
export function runClient(t: TestContext, file: string, args: readonly string[]): ChildProcess {
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'ignore'], env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/' } });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); // by its pid
    await exited;
  });
  return child;
}

/**
 * The verdicts of the strict prefixes of `whole` (lengths 0 … whole.length − 1): every one, or
 * with `step` every step-th and the last eight.
 */
export function prefixVerdicts(whole: Buffer, sniff: (b: Buffer) => { verdict: string } | string, step = 1): string[] {
  const out: string[] = [];
  for (let n = 0; n < whole.length; n++) {
    if (n % step !== 0 && n < whole.length - 8) continue;
    // A copy, so that a read past the prefix finds nothing rather than the rest of `whole`.
    const r = sniff(Buffer.from(whole.subarray(0, n)));
    out.push(typeof r === 'string' ? r : r.verdict);
  }
  return out;
}
