// Reload storms (issue 8): SIGHUPs ten a second to the built daemon, the config file rewritten
// before each, alternating valid configs (a component added, another removed, a subordinate
// appearing and going) and broken ones (syntax, unknown statement, duplicate tag, undefined
// ACL, socket conflict), while TCPMUX clients keep using a subordinate that every valid config
// keeps. Every client must get its answer; a broken config must change nothing; and once the
// storm is over the components the control socket lists must be those of the last valid
// config. (xinetd re-reads its config on SIGHUP too, but has no way to refuse a broken one as
// a whole; inetutils inetd likewise: ../shared/reference/anchors.md §3 on reload semantics.)
import assert from 'node:assert/strict';
import { type Socket, connect } from 'node:net';
import { test } from 'node:test';
import { alive, waitFor } from '../helpers/daemon.js';
import { type DaemonProcess, freePort, startDaemonProcess } from './daemon-process.js';
import { record, size } from './lib.js';

const SIGNALS = size(20, 100);
const PERIOD_MS = 100;
const CLIENTS = 6;
const PAYLOAD = Buffer.from('reload storm: every byte comes back\n');

function validConfig(port: number, generation: number): string {
  return `
component tcpmux { socket inet://127.0.0.1:${port}; service tcpmux; flags internal; }
component echo { tcpmux-master tcpmux; service echo; flags tcpmuxplus; command /bin/cat; }
component gen-${generation} { command "/bin/sleep 100000"; }
${generation % 2 === 0 ? 'component extra { tcpmux-master tcpmux; service extra; flags tcpmuxplus; command /bin/cat; }' : ''}
component steady { command "/bin/sleep 100000"; env { set "GEN=${generation % 3}"; } }
`;
}

const BROKEN = [
  (port: number) => `component tcpmux { socket inet://127.0.0.1:${port}; service tcpmux; flags internal;\n`,
  (port: number) => `${validConfig(port, 1)}\ncomponent oops { comand /bin/true; }\n`,
  (port: number) => `${validConfig(port, 1)}\ncomponent echo { command /bin/true; }\n`,
  (port: number) => `${validConfig(port, 1)}\ncomponent guarded { command /bin/true; acl no-such-acl; }\n`,
  (port: number) => `${validConfig(port, 1)}\ncomponent clash { socket inet://127.0.0.1:${port}; command /bin/cat; }\n`,
];

// One TCPMUX exchange: `echo`, the `+` reply, the payload echoed, then the server's FIN.
function exchange(port: number, live: Set<Socket>): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    live.add(socket);
    let phase: 'connect' | 'reply' | 'echo' | 'fin' = 'connect';
    let got = Buffer.alloc(0);
    let done = false;
    const finish = (problem: string | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      live.delete(socket);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => finish(`timeout in ${phase}`), 8000);
    socket.once('connect', () => {
      phase = 'reply';
      socket.write('echo\r\n');
    });
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (phase === 'reply' && got.length >= 3) {
        if (!got.subarray(0, 3).equals(Buffer.from('+\r\n'))) return finish(`reply ${JSON.stringify(got.toString('latin1'))}`);
        got = got.subarray(3);
        phase = 'echo';
        socket.write(PAYLOAD);
      }
      if (phase === 'echo' && got.length >= PAYLOAD.length) {
        if (!got.equals(PAYLOAD)) return finish('echo mismatch');
        phase = 'fin';
        socket.end();
      }
    });
    socket.on('end', () => finish(phase === 'fin' && got.equals(PAYLOAD) ? undefined : `closed in ${phase}`));
    socket.on('error', (e: NodeJS.ErrnoException) => finish(`${e.code ?? 'error'} in ${phase}`));
  });
}

const outcomes = (d: DaemonProcess): number => d.entries((l) => l.msg === 'config reloaded' || l.msg === 'config rejected').length;

// Every reload asked for has been answered, and nothing new came for a moment.
async function settle(d: DaemonProcess): Promise<void> {
  let last = -1;
  await waitFor(
    async () => {
      const now = outcomes(d);
      const requested = d.entries({ msg: 'reload requested' }).length;
      const quiet = now === last && now === requested;
      last = now;
      if (!quiet) await new Promise((r) => setTimeout(r, 200));
      return quiet;
    },
    30_000,
    'the reloads to settle',
  );
}

test('reload storm: no client fails, broken configs change nothing, the last valid config wins', async (t) => {
  const port = await freePort();
  const d = await startDaemonProcess(t, { config: validConfig(port, 0) });
  const live = new Set<Socket>();
  t.after(() => {
    for (const s of live) s.destroy();
  });

  let loading = true;
  let served = 0;
  const failures: string[] = [];
  const loops = Array.from({ length: CLIENTS }, async () => {
    while (loading) {
      const problem = await exchange(port, live);
      if (problem === undefined) served++;
      else failures.push(problem);
    }
  });

  const rssStart = d.rssMb();
  const cpuStart = d.cpuSeconds();
  const started = performance.now();
  let lastValid = 0;
  for (let i = 1; i <= SIGNALS; i++) {
    if (i % 2 === 1) {
      lastValid = i;
      d.rewrite(validConfig(port, i));
    } else d.rewrite(BROKEN[(i / 2) % BROKEN.length]!(port));
    d.signal('SIGHUP');
    await new Promise((r) => setTimeout(r, Math.max(0, started + i * PERIOD_MS - performance.now())));
  }
  const stormSeconds = (performance.now() - started) / 1000;
  await settle(d);
  const stormServed = served;
  // A deterministic end: one more valid config, applied; then a broken one, refused.
  lastValid = SIGNALS + 1;
  d.rewrite(validConfig(port, lastValid));
  d.signal('SIGHUP');
  await settle(d);
  d.rewrite(BROKEN[0]!(port));
  d.signal('SIGHUP');
  await settle(d);
  loading = false;
  await Promise.all(loops);
  const cpuSeconds = d.cpuSeconds() - cpuStart;

  const listed = (await d.control('GET', '/programs')).body as Array<{ tag: string; state: string }>;
  const expected = ['tcpmux', 'echo', `gen-${lastValid}`, ...(lastValid % 2 === 0 ? ['extra'] : []), 'steady'];
  const tags = listed.map((p) => p.tag);
  const gen = listed.find((p) => p.tag === `gen-${lastValid}`);
  // The last reload was refused, and said so with every diagnostic.
  const lastOutcome = d.entries((l) => l.msg === 'config reloaded' || l.msg === 'config rejected').at(-1);
  const requested = d.entries({ msg: 'reload requested' }).length;
  const applied = d.entries({ msg: 'config reloaded' }).length;
  const rejected = d.entries({ msg: 'config rejected' }).length;
  // Components of earlier generations were stopped: of all the sleep processes ever started
  // only those of the listed components still run.
  const current = new Set(listed.map((p) => (p as { pid?: number }).pid).filter((pid) => pid !== undefined));
  const strays = d.entries({ msg: 'component started' }).map((l) => Number(l['childPid'])).filter((pid) => !current.has(pid) && alive(pid)).length;
  const pass = failures.length === 0 && served > 0 && JSON.stringify(tags) === JSON.stringify(expected) && gen?.state === 'running' && lastOutcome?.msg === 'config rejected' && strays === 0 && d.running();
  record(t, {
    scenario: 'reload-storm',
    figures: {
      SIGHUPs: SIGNALS + 2,
      'storm (s)': Math.round(stormSeconds * 10) / 10,
      'reloads run': requested,
      applied,
      rejected,
      'TCPMUX exchanges ok': served,
      'ok during the storm': stormServed,
      'failed connections': failures.length,
      'daemon CPU (s)': Math.round(cpuSeconds * 10) / 10,
      'RSS start/end (MB)': `${Math.round(rssStart)}/${Math.round(d.rssMb())}`,
      'final components match': JSON.stringify(tags) === JSON.stringify(expected) ? 'yes' : 'no',
      'stray processes': strays,
    },
    condition: 'zero failed connections; final components = last valid config; broken configs refused',
    pass,
  });
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} failed connections`);
  assert.ok(stormServed > SIGNALS, `${stormServed} exchanges during the storm`);
  assert.deepEqual(tags, expected);
  assert.equal(gen?.state, 'running');
  assert.equal(lastOutcome?.msg, 'config rejected');
  assert.ok(applied >= 2 && rejected >= 2, `applied ${applied}, rejected ${rejected}`);
  assert.equal(strays, 0, 'processes of components no longer configured');
  assert.equal(current.size, 2, 'gen and steady run');
  const stopped = await d.stop();
  assert.equal(stopped.code, 0);
});
