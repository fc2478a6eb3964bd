// The built daemon as systemd runs it, without systemd: NOTIFY_SOCKET set to a real datagram
// socket (READY, RELOADING, STOPPING from tpies itself), and a listening socket passed as fd 3
// with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES (socket activation), served by the TCPMUX master.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startReceiver } from '../helpers/notify-receiver.js';
import { handleFd } from '../../src/inetd/handle-fd.js';
import { waitFor } from '../helpers/daemon.js';
import { exchange } from '../helpers/tcp-client.js';

const CLI = fileURLToPath(new URL('../../dist/src/bin/tpies.js', import.meta.url));
const TIMEOUT = { timeout: 30_000 };
const CONFIG = `
component tcpmux { socket inet://127.0.0.1:0; service tcpmux; flags internal; }
component echo { tcpmux-master tcpmux; service echo; flags tcpmuxplus; command /bin/cat; }
component sleeper { command "/bin/sleep 60"; }
`;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tpies-systemd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'tpies.conf'), CONFIG);
  return dir;
}

// Spawn in its own process group; the group is killed after the test whatever happened.
function run(t: TestContext, file: string, args: readonly string[], options: Parameters<typeof spawn>[2]): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(file, args, { ...options, detached: true });
  t.after(() => {
    try {
      process.kill(-(child.pid ?? 0), 'SIGKILL');
    } catch {
      // Gone already.
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited };
}

test('tpies tells systemd READY, RELOADING (with MONOTONIC_USEC) then READY, and STOPPING', TIMEOUT, async (t) => {
  const dir = tempDir(t);
  const receiver = await startReceiver(t, 'path');
  const { child, exited } = run(t, process.execPath, [CLI, '-c', path.join(dir, 'tpies.conf'), '--control-socket', path.join(dir, 'ctl'), '--log-format', 'json'], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, NOTIFY_SOCKET: receiver.address },
  });
  const [ready] = await receiver.waitFor(1);
  assert.match(ready!.data, /^READY=1\nSTATUS=1 running, 1 listening, 3 components$/);
  assert.equal(ready!.pid, child.pid, 'sent from the daemon itself (NotifyAccess=main)');
  process.kill(child.pid!, 'SIGHUP');
  const [, reloading, readyAgain] = await receiver.waitFor(3);
  assert.match(reloading!.data, /^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading configuration$/);
  assert.match(readyAgain!.data, /^READY=1\nSTATUS=config reloaded; /);
  process.kill(child.pid!, 'SIGTERM');
  const [, , , stopping] = await receiver.waitFor(4);
  assert.match(stopping!.data, /^STOPPING=1/);
  assert.equal(await exited, 0);
});

test('a socket passed by systemd (LISTEN_FDS, fd name = component tag) is served', TIMEOUT, async (t) => {
  const dir = tempDir(t);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const port = (server.address() as AddressInfo).port;
  // As systemd does: fd 3 in the service, LISTEN_PID its own pid (sh execs node: same pid).
  const tpies = `exec env LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=tcpmux "${process.execPath}" "${CLI}" -c "${path.join(dir, 'tpies.conf')}" --control-socket "${path.join(dir, 'ctl')}" --log-format json`;
  const fd = handleFd(server);
  assert.ok(fd !== undefined);
  const { child, exited } = run(t, '/bin/sh', ['-c', tpies], { stdio: ['ignore', 'ignore', 'pipe', fd] });
  // Our copy must go, or this process would accept connections too.
  server.close();
  const lines: string[] = [];
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
  await waitFor(() => lines.some((l) => l.includes('"tpies started"')), 15_000, 'tpies started');
  const help = await exchange({ port, send: ['help\r\n'], halfClose: true });
  assert.equal(help.data.toString('latin1'), 'echo\r\n');
  const echo = await exchange({ port, send: ['echo\r\nthrough systemd'], halfClose: true });
  assert.equal(echo.data.toString('latin1'), '+\r\nthrough systemd');
  assert.ok(lines.some((l) => l.includes('"listening"') && l.includes(`127.0.0.1:${port}`)), 'listening on the inherited socket');
  process.kill(child.pid!, 'SIGTERM');
  assert.equal(await exited, 0);
});
