// Descriptor exhaustion (issue 8): tpies under RLIMIT_NOFILE 256 while clients open far more
// connections than it has descriptors for, and hold them (idle TCPMUX clients stay with tpies
// until `tcpmux-timeout`). libuv then accepts and closes the excess itself (its EMFILE trick,
// docs/tcpmux.md), so those clients see their connection end at once. Clients tpies did
// accept then ask for a service, whose program cannot start without descriptors. tpies must
// never exit and must serve again as soon as descriptors free up. Whether it logs the
// condition is recorded as a figure (libuv's trick is invisible to Node).
import assert from 'node:assert/strict';
import { type Socket, connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { exchange } from '../helpers/tcp-client.js';
import { startDaemonProcess } from './daemon-process.js';
import { record, size } from './lib.js';

const NOFILE = 256;
const CLIENTS = size(400, 1000);
const ASKERS = 5;
const ANSWER_LIMIT_MS = 3000;
const RECOVERY_LIMIT_MS = 5000;
const AFTER_EXCHANGES = size(20, 100);

const CONFIG = `
component tcpmux { socket inet://127.0.0.1:0; service tcpmux; flags internal; tcpmux-timeout 60; }
component echo { tcpmux-master tcpmux; service echo; flags tcpmuxplus; command /bin/cat; }
`;

interface Held {
  readonly socket: Socket;
  readonly chunks: Buffer[];
  /** Ended by the daemon (FIN or reset) before we let go. */
  closed: boolean;
}

const echoOk = async (port: number): Promise<boolean> => {
  const r = await exchange({ port, send: ['echo\r\nhi'], halfClose: true, timeoutMs: 2000 });
  return r.closed === 'end' && r.data.toString('latin1') === '+\r\nhi';
};

// What a held client got after asking for `echo`: the bytes, and whether the connection ended.
function ask(h: Held): Promise<{ text: string; ended: boolean }> {
  return new Promise((resolve) => {
    const done = (ended: boolean): void => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(h.chunks).toString('latin1'), ended });
    };
    const timer = setTimeout(() => done(false), ANSWER_LIMIT_MS);
    if (h.closed) return done(true);
    h.socket.once('close', () => done(true));
    h.socket.end('echo\r\nhi');
  });
}

test('descriptor exhaustion: the daemon never exits and serves again once descriptors free up', { timeout: size(30_000, 120_000) }, async (t) => {
  const tpies = await startDaemonProcess(t, { config: CONFIG, wrapper: ['prlimit', `--nofile=${NOFILE}:${NOFILE}`, '--'] });
  const port = tpies.port('tcpmux');
  assert.ok(await echoOk(port), 'echo works before the exhaustion');
  const fdsIdle = tpies.fds();

  const held: Held[] = [];
  t.after(() => held.forEach((h) => h.socket.destroy()));
  let fdsPeak = fdsIdle;
  const sampler = setInterval(() => {
    if (tpies.running()) fdsPeak = Math.max(fdsPeak, tpies.fds());
  }, 20);
  t.after(() => clearInterval(sampler));

  // Open them 100 at a time, each batch once the previous one has connected or been dropped.
  const started = performance.now();
  for (let first = 0; first < CLIENTS; first += 100) {
    const batch: Promise<void>[] = [];
    for (let i = first; i < Math.min(CLIENTS, first + 100); i++) {
      const socket = connect({ host: '127.0.0.1', port });
      const h: Held = { socket, chunks: [], closed: false };
      held.push(h);
      batch.push(
        new Promise<void>((resolve) => {
          socket.once('connect', () => resolve());
          socket.once('close', () => resolve());
        }),
      );
      socket.on('data', (c: Buffer) => h.chunks.push(c));
      socket.once('close', () => (h.closed = true));
      socket.on('error', () => undefined);
    }
    await Promise.all(batch);
  }
  const openMs = performance.now() - started;
  // Let libuv drop what it cannot keep; the held ones stay open.
  await sleep(1000);
  const stillHeld = held.filter((h) => !h.closed);
  const dropped = CLIENTS - stillHeld.length;
  const fdsExhausted = tpies.fds();
  const aliveExhausted = tpies.running();
  // With every descriptor in use a new client cannot be served.
  const servedWhileExhausted = await echoOk(port);

  // Accepted clients ask for the service now (name, payload, FIN): starting /bin/cat needs
  // descriptors (a pipe for its stderr), so it may fail, but each must get an answer or a
  // close, and tpies must live on.
  const answers = await Promise.all(stillHeld.slice(0, ASKERS).map(ask));
  await sleep(300);
  const aliveAfterAsking = tpies.running();

  // Let go, then measure how long until a normal exchange works again.
  const released = performance.now();
  for (const h of held) h.socket.destroy();
  let recoveryMs = Number.NaN;
  while (tpies.running() && performance.now() - released < RECOVERY_LIMIT_MS) {
    if (await echoOk(port)) {
      recoveryMs = performance.now() - released;
      break;
    }
    await sleep(20);
  }
  let afterOk = 0;
  for (let i = 0; i < AFTER_EXCHANGES && tpies.running(); i++) if (await echoOk(port)) afterOk++;
  // tpies probes for a descriptor once a second and calls it a recovery after three.
  await tpies.waitLog((l) => l.msg === 'file descriptors available again', 6000).catch(() => undefined);
  clearInterval(sampler);

  const aboutIt = tpies.log.filter((l) => l.msg === 'accept failed' || /EMFILE|ENFILE|file descriptors/.test(JSON.stringify(l)));
  const announced = tpies.log.some((l) => String(l.msg).startsWith('file descriptors exhausted'));
  const recovered = tpies.log.some((l) => l.msg === 'file descriptors available again');
  const fatal = tpies.log.filter((l) => l.level === 'fatal' || l.level === 60);
  const aliveAfter = tpies.running();
  const exit = aliveAfter ? await tpies.stop() : await tpies.exited;
  const answered = answers.filter((a) => a.ended).length;
  const pass = announced && recovered && aliveExhausted && aliveAfterAsking && aliveAfter && answered === answers.length && recoveryMs <= RECOVERY_LIMIT_MS && afterOk === AFTER_EXCHANGES && exit.code === 0;

  record(t, {
    scenario: 'descriptor exhaustion',
    figures: {
      RLIMIT_NOFILE: NOFILE,
      'connections opened': CLIENTS,
      'time to open them (s)': Number((openMs / 1000).toFixed(2)),
      'held open by tpies': stillHeld.length,
      'ended by tpies at once (no descriptor)': dropped,
      'daemon descriptors idle': fdsIdle,
      'daemon descriptors exhausted': fdsExhausted,
      'daemon descriptors peak': fdsPeak,
      'new client served while exhausted': servedWhileExhausted ? 'yes' : 'no',
      'held clients asking for echo': answers.length,
      'of which answered or closed': answered,
      'their answers': answers.map((a) => `${JSON.stringify(a.text)} ${a.ended ? 'closed' : 'open'}`).join(' | '),
      'log records naming the condition': aboutIt.length,
      'first such record': aboutIt[0] ? `${aboutIt[0].msg}: ${String(aboutIt[0]['reason'] ?? aboutIt[0]['err'] ?? aboutIt[0]['code'])}`.split('\n')[0]! : 'none',
      'fatal log records': fatal.length,
      'time to serve again after release (ms)': Number.isNaN(recoveryMs) ? 'never' : Number(recoveryMs.toFixed(1)),
      [`echo exchanges after, of ${AFTER_EXCHANGES}`]: afterOk,
      'exit code on SIGTERM': aliveAfter ? String(exit.code) : `exited by itself (${String(exit.code ?? exit.signal)})`,
    },
    condition: `logs the exhaustion and the recovery; never exits (running while exhausted, after the held clients ask for a service, after the release; exit 0 on SIGTERM); every asking client answered or closed within ${ANSWER_LIMIT_MS / 1000} s; an echo exchange succeeds within ${RECOVERY_LIMIT_MS / 1000} s of the release and all ${AFTER_EXCHANGES} after it`,
    pass,
  });

  const why = `; fatal records: ${JSON.stringify(fatal)}; last records: ${tpies.log
    .slice(-5)
    .map((l) => JSON.stringify(l))
    .join('\n')}`;
  assert.ok(aliveExhausted, 'running while exhausted');
  assert.ok(announced, `the exhaustion is logged${why}`);
  assert.ok(recovered, `the recovery is logged${why}`);
  assert.ok(dropped > 0 && stillHeld.length < CLIENTS, `the limit was reached (held ${stillHeld.length}, dropped ${dropped})`);
  assert.ok(fdsPeak <= NOFILE, `descriptors ${fdsPeak} within the limit`);
  assert.ok(aliveAfterAsking, `running after accepted clients asked for a service while descriptors were exhausted${why}`);
  assert.equal(answered, answers.length, 'asking clients answered or closed');
  assert.ok(recoveryMs <= RECOVERY_LIMIT_MS, `served again within ${RECOVERY_LIMIT_MS} ms of the release`);
  assert.equal(afterOk, AFTER_EXCHANGES, 'echo exchanges after the release');
  assert.deepEqual(exit, { code: 0, signal: null });
});
