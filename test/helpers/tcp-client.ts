// A tiny TCP client for tests: connect, send, collect everything until the server closes
// (or a time limit), and report how it closed.
import { connect } from 'node:net';

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
