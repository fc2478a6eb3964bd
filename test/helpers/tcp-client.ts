// A tiny TCP client for tests: connect, send, collect everything until the server closes
// (or a time limit), and report how it closed.
import { type Socket, connect } from 'node:net';

export interface Exchange {
  readonly data: Buffer;
  /** 'end': the server sent FIN; 'reset': ECONNRESET; 'timeout': still open at the limit. */
  readonly closed: 'end' | 'reset' | 'timeout' | 'error';
}

export interface ExchangeOptions {
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  /** Chunks written in order; a number means "wait this many ms". */
  readonly send?: readonly (string | Buffer | number)[];
  /** Half-close (FIN) after sending. */
  readonly halfClose?: boolean;
  readonly timeoutMs?: number;
}

export function exchange(options: ExchangeOptions): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = options.path !== undefined ? connect({ path: options.path }) : connect({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (closed: Exchange['closed']): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(chunks), closed });
    };
    const timer = setTimeout(() => finish('timeout'), options.timeoutMs ?? 5000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => finish('end'));
    socket.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNRESET' ? 'reset' : 'error'));
    socket.on('connect', async () => {
      for (const part of options.send ?? []) {
        if (typeof part === 'number') await new Promise((r) => setTimeout(r, part));
        else if (!socket.destroyed) socket.write(part);
      }
      if (options.halfClose) socket.end();
    });
  });
}

/** A client that stays open: read what arrived, wait for more, see how the server closed. */
export interface Client {
  readonly socket: Socket;
  readonly localPort: number;
  readonly localAddress: string;
  received(): Buffer;
  /** Resolves once `text` has arrived (or `bytes` bytes, when a number). */
  until(expected: string | number, timeoutMs?: number): Promise<Buffer>;
  /** How the server ended the connection. */
  readonly closed: Promise<'end' | 'reset' | 'error'>;
}

export type ClientTarget = { port: number; host?: string } | { path: string };

// Connect to `target`; the socket is destroyed when the test ends.
export async function openClient(t: { after(fn: () => void): void }, target: ClientTarget): Promise<Client> {
  const socket = 'path' in target ? connect({ path: target.path }) : connect({ port: target.port, host: target.host ?? '127.0.0.1' });
  t.after(() => socket.destroy());
  const chunks: Buffer[] = [];
  let total = 0;
  const waiters = new Set<() => void>();
  socket.on('data', (c: Buffer) => {
    chunks.push(c);
    total += c.length;
    for (const w of waiters) w();
  });
  const closed = new Promise<'end' | 'reset' | 'error'>((resolve) => {
    socket.on('end', () => resolve('end'));
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNRESET' ? 'reset' : 'error'));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const received = (): Buffer => Buffer.concat(chunks);
  return {
    socket,
    localPort: socket.localPort ?? 0,
    localAddress: socket.localAddress ?? '',
    received,
    closed,
    until(expected, timeoutMs = 5000) {
      const done = (): boolean => (typeof expected === 'number' ? total >= expected : received().includes(expected));
      if (done()) return Promise.resolve(received());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${JSON.stringify(expected)}; got ${JSON.stringify(received().toString('latin1'))}`));
        }, timeoutMs);
        const check = (): void => {
          if (!done()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(received());
        };
        waiters.add(check);
      });
    },
  };
}
