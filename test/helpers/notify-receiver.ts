// A real sd_notify receiver for tests: python3 binds an AF_UNIX datagram socket (a path or an
// @abstract name; Node can bind neither) with SO_PASSCRED and reports every datagram.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';

// Debian's own python3 starts faster than a version-manager shim found first on $PATH.
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

// Prints {"bound":true}, then one JSON line per datagram: text, sender pid (SCM_CREDENTIALS),
// fds passed (BARRIER=1 carries one; closing it releases systemd-notify, as systemd does)
// and CLOCK_MONOTONIC at receipt in µs. Exits by itself after 30 s whatever happens.
const RECEIVER = String.raw`
import json, os, signal, socket, struct, sys, time
signal.alarm(30)
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind('\0' + addr[1:] if addr.startswith('@') else addr)
print(json.dumps({"bound": True}), flush=True)
while True:
    data, anc, flags, _ = s.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(64))
    pid, fds = None, []
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', payload[:12])[0]
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += list(struct.unpack('%di' % (len(payload) // 4), payload[:len(payload) - len(payload) % 4]))
    for fd in fds:
        os.close(fd)
    print(json.dumps({"data": data.decode(), "pid": pid, "fds": len(fds), "usec": time.monotonic_ns() // 1000}), flush=True)
`;

export interface Datagram {
  readonly data: string;
  readonly pid: number | null;
  readonly fds: number;
  readonly usec: number;
}

export interface Receiver {
  /** The NOTIFY_SOCKET value. */
  readonly address: string;
  /** Every datagram so far, in order. */
  readonly received: Datagram[];
  /** Wait until `count` datagrams have arrived. */
  waitFor(count: number): Promise<Datagram[]>;
}

export async function startReceiver(t: TestContext, kind: 'path' | 'abstract'): Promise<Receiver> {
  let address: string;
  if (kind === 'path') {
    const dir = await mkdtemp(path.join(tmpdir(), 'tpies-notify-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    address = path.join(dir, 'notify.sock');
  } else {
    address = `@tpies-test-notify-${process.pid}-${Math.random().toString(36).slice(2)}`;
  }
  const proc = spawn(PYTHON, ['-c', RECEIVER, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => stopProcess(proc));
  const received: Datagram[] = [];
  const waiters = new Set<() => void>();
  let bound!: () => void;
  let failed!: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    bound = resolve;
    failed = reject;
  });
  proc.once('error', (error) => failed(error));
  proc.once('exit', (code) => failed(new Error(`python3 receiver exited with ${code}`)));
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const message = JSON.parse(line) as Datagram | { bound: true };
    if ('bound' in message) bound();
    else received.push(message);
    for (const wake of waiters) wake();
  });
  await ready;
  return {
    address,
    received,
    async waitFor(count) {
      const deadline = Date.now() + 5000;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} datagrams; got ${JSON.stringify(received)}`);
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            waiters.delete(wake);
            resolve();
          };
          waiters.add(wake);
          setTimeout(wake, 100);
        });
      }
      return received.slice(0, count);
    },
  };
}

export function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}
