// sd_notify(3) without libsystemd: READY/RELOADING/STOPPING/STATUS datagrams to $NOTIFY_SOCKET.
// Through koffi (src/native/libc.ts, its only importer); falls back to spawning systemd-notify(1).
//
// Why koffi first (node-on-this-machine.md §10, measured against a SO_PASSCRED receiver):
// NOTIFY_SOCKET is an AF_UNIX *datagram* socket and Node has no unix datagram sockets. koffi
// (prebuilt binaries inside the registry package, no compiler) calls socket()+sendto() in
// our own process, so the sender's credentials are tpies's own pid and `NotifyAccess=main`
// suffices, with no process spawned per message. systemd-notify is the fallback when koffi
// cannot load (an exotic platform, a stripped install): as root it sends with its parent's
// (our) pid, but as another user it sends from its own pid, so the unit then needs
// `NotifyAccess=all`. It also waits for systemd to acknowledge (BARRIER=1), so that
// systemd can still attribute the message to the unit while the helper is alive.
import { AF_UNIX, EAGAIN, type Libc, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SUN_PATH_MAX, errnoName, loadLibc, writeFamily } from '../native/libc.js';
import { spawnChild } from '../supervisor/spawn.js';

export type NotifyTransport = 'koffi' | 'systemd-notify';

/** Sends sd_notify state to the service manager. No method ever throws or rejects. */
export interface Notifier {
  /** $NOTIFY_SOCKET as given: a path, or `@name` for an abstract socket. */
  readonly socket: string;
  readonly transport: NotifyTransport;
  /** Why koffi was not used, when the transport is the systemd-notify fallback. */
  readonly fallbackReason: string | undefined;
  /** Why the last send failed; undefined after a success. */
  readonly lastError: string | undefined;
  /** Send assignments in order (`{READY: '1'}` → `READY=1`); resolves false on failure. */
  send(state: Readonly<Record<string, string>>): Promise<boolean>;
  /** READY=1 (start-up or a reload finished), with an optional STATUS. */
  ready(status?: string): Promise<boolean>;
  /** RELOADING=1 with MONOTONIC_USEC (required by Type=notify-reload), optional STATUS. */
  reloading(status?: string): Promise<boolean>;
  /** STOPPING=1, with an optional STATUS. */
  stopping(status?: string): Promise<boolean>;
  /** STATUS=text: free-form, shown by `systemctl status`. */
  status(text: string): Promise<boolean>;
}

export interface NotifierOptions {
  /** Force a transport (tests); default koffi, or systemd-notify when koffi cannot load. */
  readonly transport?: NotifyTransport;
  /** The fallback binary; default `systemd-notify` looked up on $PATH. */
  readonly systemdNotify?: string;
}

// Give up on systemd-notify after this long (its own barrier timeout is 5 s).
const SYSTEMD_NOTIFY_TIMEOUT_MS = 10_000;
// A full receive queue (EAGAIN on our non-blocking socket) is retried this often, this long.
const EAGAIN_RETRY_MS = 20;
const EAGAIN_GIVE_UP_MS = 1_000;

// The notifier for $NOTIFY_SOCKET, or undefined when tpies is not run by a service manager.
export function createNotifier(env: NodeJS.ProcessEnv = process.env, options: NotifierOptions = {}): Notifier | undefined {
  const socket = env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '') return undefined;
  const viaBinary = (message: string): Promise<string | undefined> => runSystemdNotify(options.systemdNotify ?? 'systemd-notify', socket, env.PATH, message);
  if (options.transport === 'systemd-notify') return makeNotifier(socket, 'systemd-notify', undefined, viaBinary);
  const libc = loadLibc();
  if (!(libc instanceof Error)) return makeNotifier(socket, 'koffi', undefined, (message) => sendDatagram(libc, socket, message));
  const reason = `koffi is unavailable: ${libc.message}`;
  if (options.transport === 'koffi') return makeNotifier(socket, 'koffi', undefined, () => Promise.resolve(reason));
  return makeNotifier(socket, 'systemd-notify', reason, viaBinary);
}

// `KEY=VALUE` lines as sd_notify(3) wants them, or an error for an unusable key. A newline
// inside a value would start a new assignment, so it becomes a space.
export function formatNotifyMessage(state: Readonly<Record<string, string>>): string | Error {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(state)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(key)) return new Error(`invalid sd_notify variable name "${key}"`);
    lines.push(`${key}=${value.replace(/[\r\n]+/g, ' ')}`);
  }
  if (lines.length === 0) return new Error('empty sd_notify message');
  return lines.join('\n');
}

// CLOCK_MONOTONIC in microseconds, as MONOTONIC_USEC= wants it (libuv's hrtime is
// clock_gettime(CLOCK_MONOTONIC) on Linux).
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

function makeNotifier(socket: string, transport: NotifyTransport, fallbackReason: string | undefined, transmit: (message: string) => Promise<string | undefined>): Notifier {
  let lastError: string | undefined;
  // One message at a time, in order: RELOADING must not overtake the READY before it.
  let queue: Promise<unknown> = Promise.resolve();
  const send = (state: Readonly<Record<string, string>>): Promise<boolean> => {
    const run = queue.then(async () => {
      let error: string | undefined;
      try {
        const message = formatNotifyMessage(state);
        error = message instanceof Error ? message.message : await transmit(message);
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
      lastError = error;
      return error === undefined;
    });
    queue = run;
    return run;
  };
  const withStatus = (state: Record<string, string>, status: string | undefined): Record<string, string> => (status === undefined ? state : { ...state, STATUS: status });
  return {
    socket,
    transport,
    fallbackReason,
    get lastError() {
      return lastError;
    },
    send,
    ready: (status) => send(withStatus({ READY: '1' }, status)),
    reloading: (status) => send(withStatus({ RELOADING: '1', MONOTONIC_USEC: String(monotonicUsec()) }, status)),
    stopping: (status) => send(withStatus({ STOPPING: '1' }, status)),
    status: (text) => send({ STATUS: text }),
  };
}

// ---- koffi transport (src/native/libc.ts) --------------------------------------------------

// struct sockaddr_un for a path or an `@abstract` name (leading NUL, length-delimited).
function sockaddrUn(address: string): Buffer | Error {
  let path: Buffer;
  if (address.startsWith('@')) path = Buffer.concat([Buffer.from([0]), Buffer.from(address.slice(1))]);
  else if (address.startsWith('/')) path = Buffer.concat([Buffer.from(address), Buffer.from([0])]);
  else return new Error(`unsupported NOTIFY_SOCKET "${address}" (expected a path or @name)`);
  if (path.length > SUN_PATH_MAX) return new Error(`NOTIFY_SOCKET "${address}" is too long`);
  const sa = Buffer.alloc(2 + path.length);
  writeFamily(sa, AF_UNIX);
  path.copy(sa, 2);
  return sa;
}

// One datagram from a fresh non-blocking socket, like sd_notify(3) does; resolves to an error
// text or undefined. A full queue (EAGAIN) is retried briefly instead of blocking the loop.
async function sendDatagram(libc: Libc, address: string, message: string): Promise<string | undefined> {
  const sa = sockaddrUn(address);
  if (sa instanceof Error) return sa.message;
  const payload = Buffer.from(message);
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return `socket(AF_UNIX, SOCK_DGRAM) failed: ${errnoName(libc.errno())}`;
  try {
    const deadline = Date.now() + EAGAIN_GIVE_UP_MS;
    for (;;) {
      const sent = libc.sendto(fd, payload, payload.length, MSG_NOSIGNAL, sa, sa.length);
      if (sent === payload.length) return undefined;
      const errno = sent < 0 ? libc.errno() : 0;
      if (errno !== EAGAIN || Date.now() > deadline) return sent < 0 ? `sendto ${address} failed: ${errnoName(errno)}` : `sendto ${address}: short write`;
      await new Promise((resolve) => setTimeout(resolve, EAGAIN_RETRY_MS));
    }
  } finally {
    libc.close(fd);
  }
}

// ---- systemd-notify fallback --------------------------------------------------------------

// systemd-notify VAR=VALUE…: sends the same datagram (then BARRIER=1 and waits for it).
async function runSystemdNotify(file: string, socket: string, path: string | undefined, message: string): Promise<string | undefined> {
  const child = spawnChild({
    file,
    args: message.split('\n'),
    env: { NOTIFY_SOCKET: socket, PATH: path ?? '/usr/local/bin:/usr/bin:/bin' },
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (stderr.length < 1000) stderr += chunk;
  });
  child.stderr?.on('error', () => undefined);
  const timer = setTimeout(() => child.kill('SIGKILL', false), SYSTEMD_NOTIFY_TIMEOUT_MS);
  try {
    const exit = await child.exited;
    if (exit.spawnError !== undefined) return `cannot run ${file}: ${exit.spawnError}`;
    if (exit.exitCode === 0) return undefined;
    // 'exit' can come before the last of stderr: give the pipe a moment to drain.
    if (child.stderr && !child.stderr.readableEnded) await Promise.race([new Promise((resolve) => child.stderr?.once('close', resolve)), new Promise((resolve) => setTimeout(resolve, 200))]);
    const why = stderr.trim() || (exit.signal !== undefined ? `killed by ${exit.signal}` : `exit code ${exit.exitCode}`);
    return `${file} failed: ${why}`;
  } finally {
    clearTimeout(timer);
  }
}
