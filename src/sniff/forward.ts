// `forward "URL"`: proxy an accepted connection to a backend. The client socket arrives paused
// and still holds every byte the backend must see (the master peeked without consuming, or
// consumed exactly the TCPMUX line), so nothing is read from it before the backend is up.
//
// Connect (with a deadline) ─▶ optional PROXY header ─▶ relay both ways until both are done.
// * Unreachable backend: the client gets a FIN, never a reset; its unread input is drained
//   for a short while first (inetd/linger.ts), as a reset can destroy what it has not read.
// * Backpressure: a direction stops reading while what it last read waits to be written
//   (a bulk direction: while both its buffers wait). So a slow reader on one side stops
//   reads on the other, and the proxy holds at most two buffers per direction.
// * Half-close both ways (EOF on one side becomes a FIN on the other; the other direction
//   keeps flowing); an error or reset on either side destroys both, with a reset towards
//   the side that did not fail (a FIN would pass an aborted stream off as complete).
// * Why user buffers: Node's default read path allocates a fresh 64 KiB buffer per read and
//   goes through the Readable machinery; reading 256 KiB at a time into reused memory costs
//   about half the CPU of a pipe() proxy. The backend socket gets it through the public `onread`
//   option; the accepted client socket through the same internals read-line.ts uses, since
//   Node has no public way to attach them after accept. Without them the client is read
//   with 'data' events and pause/resume, which is slower but equally correct.
import { type Socket, connect } from 'node:net';
import type { SocketAddress } from '../config/model.js';
import { closeAfter } from '../inetd/linger.js';
import { type Endpoint, proxyHeader } from './proxy-header.js';
import { userBufferSymbols, useUserBuffer } from '../inetd/user-buffer.js';

export interface ForwardOptions {
  readonly target: SocketAddress;
  readonly connectTimeoutMs: number;
  readonly proxyProtocol?: 1 | 2;
  /** The client and the address it reached, for the PROXY header (unknown: UNKNOWN/LOCAL). */
  readonly source?: Endpoint;
  readonly destination?: Endpoint;
}

export interface ForwardResult {
  readonly outcome: 'forwarded' | 'backend-unreachable' | 'error';
  /** An errno code (`ECONNREFUSED`, `ETIMEDOUT`, `ECONNRESET`, …) or a short text. */
  readonly reason?: string;
  /** Bytes read from one side and handed to the other (the PROXY header not counted). */
  readonly bytesFromClient: number;
  readonly bytesFromBackend: number;
}

// Reads go first into one buffer shared by every connection, copied out at once (what Node's
// default read path costs), so an idle or chatty connection holds no buffer of its own. A read
// that fills it is a bulk transfer: that direction then gets two buffers of its own and relays
// from them without copying. Sizes measured in bench/sniff-forward.ts: 256 KiB took about 500
// ms of proxy CPU per GB against 600 for 64 KiB, with the same throughput as 1 MiB.
const SHARED_BYTES = 64 * 1024;
const BULK_BYTES = 256 * 1024;
let shared: Buffer | undefined;

// Proxy `client` to `options.target`; resolves once both sockets are closed. Never rejects.
export function forward(client: Socket, options: ForwardOptions): Promise<ForwardResult> {
  return new Promise((resolve) => {
    const counts = { fromClient: 0, fromBackend: 0 };
    let failure: string | undefined;
    let clientFailed = false;
    let connected = false;
    let open = 2;
    const finish = (outcome: ForwardResult['outcome']): void => {
      resolve({
        outcome,
        ...(failure !== undefined ? { reason: failure } : {}),
        bytesFromClient: counts.fromClient,
        bytesFromBackend: counts.fromBackend,
      });
    };
    const closed = (): void => {
      if (--open === 0) finish(failure === undefined ? 'forwarded' : 'error');
    };
    if (client.destroyed) {
      failure = 'client closed';
      return finish('error');
    }
    const onClientError = (error: NodeJS.ErrnoException): void => {
      clientFailed = true;
      failure ??= error.code ?? error.message;
      if (connected) abort(backend);
      else backend.destroy();
      client.destroy();
    };
    client.on('error', onClientError);

    // Never connected: answer the client with a FIN (not a reset) and let it go.
    const turnAway = (outcome: ForwardResult['outcome']): void => {
      if (client.closed) return finish(outcome);
      client.once('close', () => finish(outcome));
      client.off('error', onClientError);
      closeAfter(client);
    };

    const toClient = relayBuffers(() => backend, client, (n) => (counts.fromBackend += n));
    let backend: Socket;
    try {
      backend = connect({ ...connectTarget(options.target), allowHalfOpen: true, noDelay: true, onread: toClient });
    } catch (error) {
      // Options Node refuses outright (a port out of range, …).
      failure = (error as NodeJS.ErrnoException).code ?? String(error);
      return turnAway('backend-unreachable');
    }
    const timer = setTimeout(() => {
      failure ??= 'ETIMEDOUT';
      backend.destroy();
    }, options.connectTimeoutMs);

    backend.on('error', (error: NodeJS.ErrnoException) => {
      failure ??= error.code ?? error.message;
      if (connected) abort(client);
    });
    backend.once('close', () => {
      clearTimeout(timer);
      if (connected) return closed();
      turnAway(clientFailed || client.destroyed ? 'error' : 'backend-unreachable');
    });
    backend.once('connect', () => {
      clearTimeout(timer);
      if (client.destroyed) {
        failure ??= 'client closed';
        backend.destroy();
        return;
      }
      connected = true;
      // A client gone without its FIN (reset, or destroyed by a reload or stop) takes the
      // backend with it; after a clean end the backend still gets what is queued for it.
      let clientEnded = false;
      client.once('close', () => {
        if (!clientEnded && !backend.destroyed) abort(backend);
        closed();
      });
      if (options.proxyProtocol !== undefined) backend.write(proxyHeader(options.proxyProtocol, options.source, options.destination));
      if (client.remoteFamily !== undefined) client.setNoDelay(true);
      client.on('end', () => {
        clientEnded = true;
        if (!backend.destroyed) backend.end();
      });
      backend.on('end', () => {
        if (!client.destroyed) client.end();
      });
      relayFromClient(client, backend, (n) => (counts.fromClient += n));
    });
  });
}

// An error on one side resets the other (TCP): a FIN would tell it the stream ended, and a
// client reading a response up to EOF would take a truncated one for complete.
function abort(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    // Not TCP (a unix socket) or still connecting: a plain close is all there is.
    socket.destroy();
  }
}

function connectTarget(target: SocketAddress): { path: string } | { host: string; port: number; family: 4 | 6 } {
  return target.kind === 'unix' ? { path: target.path } : { host: target.host, port: target.port, family: target.family };
}

/** What `onread` takes: where the next read goes, and what to do with it. */
interface ReadInto {
  readonly buffer: () => Uint8Array;
  readonly callback: (nread: number, buffer: Uint8Array) => boolean;
}

// One direction, `from` ─▶ `to` (see the head of the file and SHARED_BYTES). Returning false
// from the callback makes Node stop reading `from`; it is resumed once the buffer it will read
// into next is free again (for a copy: once the copy is written).
function relayBuffers(from: () => Socket, to: Socket, count: (n: number) => void): ReadInto {
  let own: readonly [Buffer, Buffer] | undefined;
  const at = (pair: readonly [Buffer, Buffer], i: number): Buffer => (i === 0 ? pair[0] : pair[1]);
  const busy = [false, false];
  let current = 0;
  let stalled = false;
  const resume = (): void => {
    stalled = false;
    const source = from();
    if (!source.destroyed) source.resume();
  };
  const release = (i: number): void => {
    busy[i] = false;
    if (stalled && i === current) resume();
  };
  // A write's callback may only release what the write held once write() has returned and
  // found the write still queued: a write the kernel took at once frees its buffer right away.
  const send = (chunk: Buffer, onQueued: () => void): boolean => {
    const write = { queued: false };
    to.write(chunk, () => {
      if (write.queued) onQueued();
    });
    write.queued = to.writableLength > 0;
    return write.queued;
  };
  return {
    buffer: () => (own ? at(own, current) : (shared ??= Buffer.allocUnsafeSlow(SHARED_BYTES))),
    callback: (nread, buffer) => {
      if (to.destroyed) return false;
      count(nread);
      if (!own) {
        if (nread === buffer.length) own = [Buffer.allocUnsafeSlow(BULK_BYTES), Buffer.allocUnsafeSlow(BULK_BYTES)];
        if (!send(Buffer.from(buffer.subarray(0, nread)), resume)) return true;
        stalled = true;
        return false;
      }
      const i = current;
      if (!send(at(own, i).subarray(0, nread), () => release(i))) return true;
      busy[i] = true;
      current = 1 - i;
      if (!busy[current]) return true;
      // Both buffers wait for the other side; the older one (now `current`) frees first.
      stalled = true;
      return false;
    },
  };
}

// Start relaying client ─▶ backend. The client was accepted paused; if a line reader left its
// own 1-byte user buffer on it, ours replaces it.
function relayFromClient(client: Socket, backend: Socket, count: (n: number) => void): void {
  const symbols = userBufferSymbols(client);
  // Bytes already taken from the kernel by Node's default read path go first.
  if (client.readableLength > 0) {
    for (let chunk: Buffer | null; (chunk = client.read() as Buffer | null) !== null; ) {
      count(chunk.length);
      backend.write(chunk);
    }
  }
  if (symbols) {
    const relay = relayBuffers(() => client, backend, count);
    useUserBuffer(client, symbols, relay.buffer(), relay.callback, relay.buffer);
  } else {
    client.on('data', (chunk: Buffer) => {
      count(chunk.length);
      if (!backend.write(chunk)) client.pause();
    });
    backend.on('drain', () => client.resume());
  }
  client.resume();
}

