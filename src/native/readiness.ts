// Tells when new bytes arrive on sockets tpies watches without reading them (sniffing peeks;
// a read would take the bytes from the program that gets the socket). libuv offers no such
// watch to JavaScript, so one epoll instance does it for every watched socket, edge-triggered
// (the bytes stay queued, so level-triggered would fire without end), with one epoll_wait at
// a time on koffi's worker thread — a thread, not one per connection, and nothing on the
// event loop. The wait runs only while something is watched, so an idle daemon parks no thread.
import { loadNative } from './koffi.js';

const EPOLLIN = 0x001;
const EPOLLERR = 0x008;
const EPOLLHUP = 0x010;
const EPOLLRDHUP = 0x2000;
const EPOLLET = 0x80000000;
const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
// struct epoll_event is packed on x86-64 (12 bytes), naturally aligned elsewhere (16).
const EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
const DATA_OFFSET = process.arch === 'x64' ? 4 : 8;
const MAX_EVENTS = 256;
// A slice bounds how long a finished watch keeps the worker thread after its last unwatch.
const WAIT_SLICE_MS = 250;

/** What happened on a watched socket: new bytes, or the peer will send no more. */
export interface ReadinessEvent {
  readonly readable: boolean;
  readonly hangup: boolean;
}

export interface Watch {
  /** Stop watching; `fd` must still be open (before the socket is closed or handed off). */
  stop(): void;
  /** Stop after `fd` was closed elsewhere: the kernel dropped it from the epoll set with the
   * close, and its number may already belong to another socket, which must stay watched. */
  forget(): void;
}

export interface Readiness {
  /** Call `onEvent` on every arrival of new bytes or hang-up on `fd`. */
  watch(fd: number, onEvent: (event: ReadinessEvent) => void): Watch;
}

let cached: Readiness | Error | undefined;

export function loadReadiness(): Readiness | Error {
  if (cached !== undefined) return cached;
  const native = loadNative();
  if (native instanceof Error) return (cached = native);
  try {
    const { koffi, lib } = native;
    const epollCreate = lib.func('int epoll_create1(int flags)');
    const epollCtl = lib.func('int epoll_ctl(int epfd, int op, int fd, void *event)');
    const epollWait = lib.func('int epoll_wait(int epfd, _Out_ void *events, int maxevents, int timeout)');
    const epfd = epollCreate(EPOLL_CLOEXEC) as number;
    if (epfd < 0) throw new Error(`epoll_create1: errno ${koffi.errno()}`);
    cached = new EpollReadiness({
      add: (fd, event) => epollCtl(epfd, EPOLL_CTL_ADD, fd, event) as number,
      del: (fd) => epollCtl(epfd, EPOLL_CTL_DEL, fd, Buffer.alloc(EVENT_SIZE)) as number,
      errno: () => koffi.errno(),
      wait: (events, cb) => epollWait.async(epfd, events, MAX_EVENTS, WAIT_SLICE_MS, (error: unknown, n: unknown) => cb(error ? -1 : (n as number))),
    });
  } catch (error) {
    cached = error instanceof Error ? error : new Error(String(error));
  }
  return cached;
}

interface Epoll {
  add(fd: number, event: Buffer): number;
  del(fd: number): number;
  errno(): number;
  wait(events: Buffer, cb: (n: number) => void): void;
}

class EpollReadiness implements Readiness {
  readonly #epoll: Epoll;
  // By token, not fd: a closed fd's number is soon reused, and a late event for the old
  // socket must not reach the new one.
  readonly #watches = new Map<number, (event: ReadinessEvent) => void>();
  readonly #events = Buffer.alloc(EVENT_SIZE * MAX_EVENTS);
  #nextToken = 1;
  #waiting = false;

  constructor(epoll: Epoll) {
    this.#epoll = epoll;
  }

  watch(fd: number, onEvent: (event: ReadinessEvent) => void): Watch {
    const token = this.#nextToken;
    this.#nextToken = this.#nextToken >= 0xffffffff ? 1 : this.#nextToken + 1;
    const event = Buffer.alloc(EVENT_SIZE);
    event.writeUInt32LE((EPOLLIN | EPOLLRDHUP | EPOLLET) >>> 0, 0);
    event.writeUInt32LE(token, DATA_OFFSET);
    if (this.#epoll.add(fd, event) < 0) throw new Error(`epoll_ctl(ADD, ${fd}): errno ${this.#epoll.errno()}`);
    this.#watches.set(token, onEvent);
    this.#wait();
    return {
      stop: () => {
        if (this.#watches.delete(token)) this.#epoll.del(fd);
      },
      forget: () => void this.#watches.delete(token),
    };
  }

  #wait(): void {
    if (this.#waiting || this.#watches.size === 0) return;
    this.#waiting = true;
    this.#epoll.wait(this.#events, (n) => {
      this.#waiting = false;
      // A failed wait (EINTR) reports nothing; the next one picks the events up.
      for (let i = 0; i < n; i++) {
        const flags = this.#events.readUInt32LE(i * EVENT_SIZE);
        const token = this.#events.readUInt32LE(i * EVENT_SIZE + DATA_OFFSET);
        this.#watches.get(token)?.({ readable: (flags & EPOLLIN) !== 0, hangup: (flags & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) !== 0 });
      }
      this.#wait();
    });
  }
}
