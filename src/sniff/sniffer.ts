// Watches a freshly accepted (paused) connection until the sniffing rules can decide: peeks
// at the queued bytes whenever new ones arrive, so nothing is consumed and a program that
// gets the socket next reads the client's stream from its first byte. Bounded by the
// master's sniff-limit (bytes) and sniff-timeout; memory per waiting connection is a closure
// and a timer, the peek buffer is shared.
import type { Socket } from 'node:net';
import { handleFd } from '../inetd/handle-fd.js';
import { errnoName } from '../native/libc.js';
import { type Readiness, type Watch, loadReadiness } from '../native/readiness.js';
import { type Recv, loadRecv } from '../native/recv.js';
import { type Decision, type SniffTable, decide } from './rules.js';

export type SniffOutcome =
  | Exclude<Decision, { kind: 'more' }>
  /** The client closed (or reset) before sending anything decisive. */
  | { readonly kind: 'closed' }
  | { readonly kind: 'error'; readonly code: string }
  /** The socket was closed under us (daemon stopping). */
  | { readonly kind: 'cancelled' };

export interface SniffSettings {
  readonly sniffLimit: number;
  readonly sniffTimeoutMs: number;
}

let scratch = Buffer.alloc(0);

export function sniffConnection(socket: Socket, table: SniffTable, settings: SniffSettings): Promise<SniffOutcome> {
  const io = loadIo();
  const fd = handleFd(socket);
  if (io instanceof Error) return Promise.resolve({ kind: 'error', code: `sniffing unavailable: ${io.message}` });
  if (fd === undefined) return Promise.resolve({ kind: 'error', code: 'EBADF' });
  if (scratch.length < settings.sniffLimit) scratch = Buffer.alloc(settings.sniffLimit);
  return new Promise((resolve) => {
    let watch: Watch | undefined;
    let hangup = false;
    let done = false;
    const settle = (outcome: SniffOutcome, fdClosed = false): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('close', onClose);
      if (fdClosed) watch?.forget();
      else watch?.stop();
      resolve(outcome);
    };
    // Peek at everything queued and ask the rules; `timedOut` makes this the last look.
    const look = (timedOut: boolean): void => {
      if (done) return;
      // destroy() closes the fd at once, 'close' comes a loop phase later: the number may
      // already be another socket's, so neither peek at it nor take it out of the epoll set.
      if (socket.destroyed) return settle({ kind: 'cancelled' }, true);
      const r = io.recv.peek(fd, scratch.subarray(0, settings.sniffLimit));
      if (typeof r === 'object') return settle(errnoName(r.errno) === 'ECONNRESET' ? { kind: 'closed' } : { kind: 'error', code: errnoName(r.errno) });
      if (r === 0) return settle({ kind: 'closed' });
      const length = r === 'again' ? 0 : r;
      const final = timedOut || hangup || length >= settings.sniffLimit;
      const decision = decide(table, scratch.subarray(0, length), { final, timedOut });
      if (decision.kind !== 'more') settle(decision);
    };
    const onClose = (): void => settle({ kind: 'cancelled' }, true);
    const timer = setTimeout(() => look(true), settings.sniffTimeoutMs);
    socket.once('close', onClose);
    try {
      watch = io.readiness.watch(fd, (event) => {
        if (event.hangup) hangup = true;
        look(false);
      });
    } catch (error) {
      return settle({ kind: 'error', code: (error as Error).message });
    }
    // Most clients send their first bytes with the handshake: they are often there already.
    look(false);
  });
}

function loadIo(): { recv: Recv; readiness: Readiness } | Error {
  const recv = loadRecv();
  if (recv instanceof Error) return recv;
  const readiness = loadReadiness();
  return readiness instanceof Error ? readiness : { recv, readiness };
}
