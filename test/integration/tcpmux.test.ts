// The TCPMUX master end to end (RFC 1078; pies manual, TCPMUX; peers.md §3): the exact reply
// bytes, how the service line is read (split, LF-only, CR-only, too long, binary), help,
// dedicated vs tcpmuxplus subordinates, byte-exact hand-off of pipelined data, half-close,
// the read timeout, concurrency, sockenv, subordinate max-instances and the audit events.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { type Client, exchange, openClient } from '../helpers/tcp-client.js';
import { alive, startTestDaemon, waitFor } from '../helpers/daemon.js';
import type { LogEntry } from '../../src/log/logger.js';

const MISS = '-Service not available\r\n';

const CONFIG = `
component tcpmux {
  socket inet://127.0.0.1:0;
  service tcpmux;
  flags internal;
  tcpmux-timeout 1;
}
component echo { tcpmux-master tcpmux; service echo; flags tcpmuxplus; command /bin/cat; }
component dedicated { tcpmux-master tcpmux; service Dedicated; flags tcpmux; command "{{bin}}/tcpmux-dedicated.sh"; }
component off { tcpmux-master tcpmux; service off; flags (tcpmuxplus, disable); command /bin/cat; }
component count { tcpmux-master tcpmux; service count; flags tcpmuxplus; command "/usr/bin/wc -c"; }
component env { tcpmux-master tcpmux; service env; flags (tcpmuxplus, sockenv); command /usr/bin/env; }
component other-master { socket inet://127.0.0.1:0; service tcpmux; flags internal; }
component other { tcpmux-master other-master; service other; flags tcpmuxplus; command /bin/cat; }
`;

function audits(logs: readonly LogEntry[], component?: string): LogEntry[] {
  return logs.filter((e) => e.msg === 'connection' && (component === undefined || e.component === component));
}

// Run `jobs` with at most `limit` in flight.
async function pool<T>(count: number, limit: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      results[i] = await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}

// ---- tests ---------------------------------------------------------------------------------

test('help lists exactly the usable subordinates of this master, CRLF, config order, any case', async (t) => {
  const d = await startTestDaemon(t, CONFIG);
  const port = d.port('tcpmux');
  for (const word of ['help', 'HELP', 'HeLp']) {
    const r = await exchange({ port, send: [`${word}\r\n`] });
    // `off` is disabled; `other` belongs to another master; no status line, no `+`.
    assert.equal(r.data.toString('latin1'), 'echo\r\nDedicated\r\ncount\r\nenv\r\n', word);
    assert.equal(r.closed, 'end', word);
  }
  const r = await exchange({ port: d.port('other-master'), send: ['help\r\n'] });
  assert.equal(r.data.toString('latin1'), 'other\r\n');
  assert.equal(r.closed, 'end');
  await waitFor(() => audits(d.logs, 'tcpmux').length === 3, 5000, 'three audit events');
  for (const e of audits(d.logs, 'tcpmux')) assert.equal(e.outcome, 'help');
});

test('service line: hits, misses and how the line is read', async (t) => {
  const d = await startTestDaemon(t, CONFIG);
  const port = d.port('tcpmux');

  await t.test('hit: `+\\r\\n` exactly, then the service', async () => {
    const r = await exchange({ port, send: ['echo\r\n'], halfClose: true });
    assert.equal(r.data.toString('latin1'), '+\r\n');
    assert.equal(r.closed, 'end');
  });

  await t.test('names are case-insensitive but not trimmed', async () => {
    for (const name of ['ECHO', 'eChO']) {
      const r = await exchange({ port, send: [`${name}\r\nx`], halfClose: true });
      assert.equal(r.data.toString('latin1'), '+\r\nx', name);
    }
    for (const name of [' echo', 'echo ', '+echo']) {
      const r = await exchange({ port, send: [`${name}\r\n`] });
      assert.equal(r.data.toString('latin1'), MISS, JSON.stringify(name));
      assert.equal(r.closed, 'end');
    }
  });

  await t.test('miss: the `-` reply bytes exactly, then FIN', async () => {
    const r = await exchange({ port, send: ['no-such-service\r\n'] });
    assert.equal(r.data.toString('latin1'), MISS);
    assert.equal(r.closed, 'end');
  });

  await t.test('a disabled subordinate is a miss', async () => {
    const r = await exchange({ port, send: ['off\r\n'] });
    assert.equal(r.data.toString('latin1'), MISS);
    assert.equal(r.closed, 'end');
  });

  await t.test('a subordinate of another master is a miss here', async () => {
    const r = await exchange({ port, send: ['other\r\n'] });
    assert.equal(r.data.toString('latin1'), MISS);
    assert.equal(r.closed, 'end');
  });

  await t.test('empty line: miss', async () => {
    const r = await exchange({ port, send: ['\r\n'] });
    assert.equal(r.data.toString('latin1'), MISS);
    assert.equal(r.closed, 'end');
  });

  await t.test('LF-only line ends the name', async () => {
    const r = await exchange({ port, send: ['echo\nafter-lf'], halfClose: true });
    assert.equal(r.data.toString('latin1'), '+\r\nafter-lf');
    assert.equal(r.closed, 'end');
  });

  await t.test('CR-only does not end the line: no reply, closed at the timeout', async () => {
    const started = Date.now();
    const r = await exchange({ port, send: ['echo\r'], timeoutMs: 4000 });
    const elapsed = Date.now() - started;
    assert.equal(r.data.length, 0);
    assert.notEqual(r.closed, 'timeout');
    assert.ok(elapsed >= 800 && elapsed < 3000, `closed after ${elapsed} ms`);
  });

  await t.test('a CR inside the line stays in the name: miss', async () => {
    const r = await exchange({ port, send: ['echo\rjunk\r\n'] });
    assert.equal(r.data.toString('latin1'), MISS);
    assert.equal(r.closed, 'end');
  });

  await t.test('CR-only then client FIN: closed without a reply', async () => {
    const r = await exchange({ port, send: ['echo\r'], halfClose: true });
    assert.equal(r.data.length, 0);
    assert.equal(r.closed, 'end');
  });

  await t.test('a name split over several packets (CRLF split too)', async () => {
    const r = await exchange({ port, send: ['e', 40, 'c', 40, 'ho', 40, '\r', 40, '\nafter', 40, '-more'], halfClose: true });
    assert.equal(r.data.toString('latin1'), '+\r\nafter-more');
    assert.equal(r.closed, 'end');
  });

  await t.test('a 10 KB line: `-` reply and a clean close', async () => {
    const r = await exchange({ port, send: [`${'x'.repeat(10 * 1024)}\r\n`] });
    assert.equal(r.data.toString('latin1'), '-Service name too long\r\n');
    assert.equal(r.closed, 'end');
  });

  await t.test('tcpmux-line-max (default 512) counts the CRLF', async () => {
    const fits = await exchange({ port, send: [`${'y'.repeat(510)}\r\n`] });
    assert.equal(fits.data.toString('latin1'), MISS);
    const over = await exchange({ port, send: [`${'y'.repeat(511)}\r\n`] });
    assert.equal(over.data.toString('latin1'), '-Service name too long\r\n');
  });

  await t.test('binary names (NUL, 0xff) are misses; NUL does not cut the name', async () => {
    for (const name of [Buffer.from([0x00]), Buffer.from([0xff, 0xfe]), Buffer.from([0x01, 0xff, 0x00, 0x80, 0x7f]), Buffer.from('echo\0junk'), Buffer.from('echo\xff', 'latin1')]) {
      const r = await exchange({ port, send: [Buffer.concat([name, Buffer.from('\r\n')])] });
      assert.equal(r.data.toString('latin1'), MISS, name.toString('hex'));
      assert.equal(r.closed, 'end');
    }
  });

  await t.test('a second request after a `-` reply is not answered', async () => {
    const r = await exchange({ port, send: ['nope\r\necho\r\n'] });
    assert.equal(r.data.toString('latin1'), MISS);
    assert.equal(r.closed, 'end');
  });
});

test('dedicated (tcpmux) and tcpmuxplus reply bytes', async (t) => {
  const d = await startTestDaemon(t, CONFIG);
  const port = d.port('tcpmux');
  // Dedicated: the master writes nothing; the program's own `+ok` is the first byte.
  const dedicated = await exchange({ port, send: ['dedicated\r\npayload'], halfClose: true });
  assert.equal(dedicated.data.toString('latin1'), '+ok\r\npayload');
  assert.equal(dedicated.closed, 'end');
  // tcpmuxplus: exactly `+\r\n`, no NUL after it (xinetd's bug), then the program's output.
  const plus = await exchange({ port, send: ['echo\r\npayload'], halfClose: true });
  assert.equal(plus.data.toString('latin1'), '+\r\npayload');
  assert.equal(plus.data.indexOf(0), -1);
  assert.equal(plus.closed, 'end');
});

test('pipelined payloads reach the child byte for byte over many connections', async (t) => {
  const d = await startTestDaemon(t, CONFIG);
  const port = d.port('tcpmux');
  // Every size many times; 1 MiB only every 40th connection to keep the run short.
  const sizes = [0, 1, 100, 64 * 1024];
  const sizeOf = (i: number): number => (i % 40 === 0 ? 1024 * 1024 : sizes[i % sizes.length]!);
  const payload = (size: number, i: number): Buffer => {
    const b = Buffer.alloc(size);
    for (let k = 0; k < size; k++) b[k] = (k * 31 + i) & 0xff;
    return b;
  };
  const N = 200;
  const results = await pool(N, 16, async (i) => {
    const size = sizeOf(i);
    const data = payload(size, i);
    // One write: the service line and the payload together.
    const r = await exchange({ port, send: [Buffer.concat([Buffer.from('echo\r\n'), data])], halfClose: true, timeoutMs: 15000 });
    return { i, size, ok: r.closed === 'end' && r.data.equals(Buffer.concat([Buffer.from('+\r\n'), data])), closed: r.closed, got: r.data.length };
  });
  const bad = results.filter((r) => !r.ok);
  assert.deepEqual(bad, [], `${bad.length} of ${N} connections failed`);
  await waitFor(() => audits(d.logs, 'tcpmux').length === N, 10000, 'an audit event per connection');
  const events = audits(d.logs, 'tcpmux');
  assert.ok(events.every((e) => e.outcome === 'served' && e.exitCode === 0 && e.service === 'echo'));
  assert.equal(new Set(events.map((e) => e.peer)).size, N);
});

test('the master never reads a byte meant for the child (wc -c counts them all)', async (t) => {
  const d = await startTestDaemon(t, CONFIG);
  const port = d.port('tcpmux');
  for (const size of [1, 257, 1000, 100_000]) {
    const r = await exchange({ port, send: [Buffer.concat([Buffer.from('count\r\n'), Buffer.alloc(size, 'z')])], halfClose: true });
    assert.equal(r.data.toString('latin1').replace(/ /g, ''), `+\r\n${size}\n`, `size ${size}`);
    assert.equal(r.closed, 'end');
  }
  // Bytes that follow the line in later packets as well.
  const r = await exchange({ port, send: ['count\r\nab', 30, 'cd', 30, 'e'], halfClose: true });
  assert.equal(r.data.toString('latin1').replace(/ /g, ''), '+\r\n5\n');
});

test('half-close: client FIN → cat exits → server FIN', async (t) => {
  const d = await startTestDaemon(t, CONFIG);
  const c = await openClient(t, { port: d.port('tcpmux') });
  c.socket.write('echo\r\n');
  await c.until('+\r\n');
  c.socket.write('first');
  await c.until('+\r\nfirst');
  await waitFor(() => d.daemon.instances('echo') === 1, 5000, 'one echo instance');
  // Still open while the client has not closed its side.
  const early = await Promise.race([c.closed, new Promise((r) => setTimeout(() => r('open'), 150))]);
  assert.equal(early, 'open');
  c.socket.write('second');
  c.socket.end();
  assert.equal(await c.closed, 'end');
  assert.equal(c.received().toString('latin1'), '+\r\nfirstsecond');
  await waitFor(() => audits(d.logs, 'tcpmux').length === 1, 5000, 'the audit event');
  const [event] = audits(d.logs, 'tcpmux');
  assert.equal(event!.outcome, 'served');
  assert.equal(event!.exitCode, 0);
  assert.equal(typeof event!.childPid, 'number');
  assert.equal(alive(event!.childPid as number), false);
  assert.equal(d.daemon.instances('echo'), 0);
});

test('an idle client is closed without a reply at tcpmux-timeout', async (t) => {
  const d = await startTestDaemon(t, CONFIG);
  const port = d.port('tcpmux');
  const started = Date.now();
  const [idle, partial] = await Promise.all([exchange({ port, timeoutMs: 4000 }), exchange({ port, send: ['ech'], timeoutMs: 4000 })]);
  const elapsed = Date.now() - started;
  for (const r of [idle, partial]) {
    assert.equal(r.data.length, 0);
    assert.notEqual(r.closed, 'timeout');
  }
  assert.ok(elapsed >= 800 && elapsed < 3000, `closed after ${elapsed} ms`);
  await waitFor(() => audits(d.logs, 'tcpmux').length === 2, 5000, 'two audit events');
  for (const e of audits(d.logs, 'tcpmux')) assert.equal(e.outcome, 'timeout');
});

test('500 concurrent handshakes all succeed', async (t) => {
  const d = await startTestDaemon(t, CONFIG);
  const port = d.port('tcpmux');
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 500 }, (_, i) => exchange({ port, send: [`echo\r\nhello-${i}`], halfClose: true, timeoutMs: 24000 })),
  );
  const elapsed = Date.now() - started;
  const bad = results.map((r, i) => ({ i, data: r.data.toString('latin1'), closed: r.closed })).filter((r) => r.data !== `+\r\nhello-${r.i}` || r.closed !== 'end');
  assert.deepEqual(bad.slice(0, 5), [], `${bad.length} of 500 failed`);
  assert.ok(elapsed < 25000, `500 handshakes took ${elapsed} ms`);
  await waitFor(() => d.daemon.instances('echo') === 0, 10000, 'all children gone');
});

test('sockenv values as the child sees them match the client socket', async (t) => {
  const d = await startTestDaemon(t, CONFIG);
  const port = d.port('tcpmux');
  const c = await openClient(t, { port });
  c.socket.write('env\r\n');
  assert.equal(await c.closed, 'end');
  const text = c.received().toString('latin1');
  assert.ok(text.startsWith('+\r\n'), text);
  const env = new Map(
    text
      .slice(3)
      .split('\n')
      .filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
  );
  const expected: Record<string, string> = {
    PROTO: 'tcp',
    SOCKTYPE: 'stream',
    LOCALIP: '127.0.0.1',
    LOCALPORT: String(port),
    REMOTEIP: c.localAddress,
    REMOTEPORT: String(c.localPort),
    TCPLOCALIP: '127.0.0.1',
    TCPLOCALPORT: String(port),
    TCPREMOTEIP: c.localAddress,
    TCPREMOTEPORT: String(c.localPort),
  };
  for (const [k, v] of Object.entries(expected)) assert.equal(env.get(k), v, k);
  // No `resolve` flag: no host names.
  assert.equal(env.has('REMOTEHOST'), false);
  assert.equal(env.has('LOCALHOST'), false);
});

test('subordinate max-instances: `-` + max-instances-message, recovery once one exits', async (t) => {
  const d = await startTestDaemon(
    t,
    `
component tcpmux { socket inet://127.0.0.1:0; service tcpmux; flags internal; }
component held {
  tcpmux-master tcpmux;
  service held;
  flags tcpmuxplus;
  command /bin/cat;
  max-instances 2;
  max-instances-message "held is busy";
}
component free { tcpmux-master tcpmux; service free; flags tcpmuxplus; command /bin/cat; }
`,
  );
  const port = d.port('tcpmux');
  const first = await openClient(t, { port });
  const second = await openClient(t, { port });
  for (const c of [first, second]) {
    c.socket.write('held\r\n');
    await c.until('+\r\n');
  }
  await waitFor(() => d.daemon.instances('held') === 2, 5000, 'two instances');
  const third = await exchange({ port, send: ['held\r\n'] });
  assert.equal(third.data.toString('latin1'), '-held is busy\r\n');
  assert.equal(third.closed, 'end');
  // The limit is the subordinate's: another subordinate of the same master still works.
  const other = await exchange({ port, send: ['free\r\nok'], halfClose: true });
  assert.equal(other.data.toString('latin1'), '+\r\nok');
  // One exits (client FIN → cat exits) and a slot is free again.
  first.socket.end();
  assert.equal(await first.closed, 'end');
  await waitFor(() => d.daemon.instances('held') === 1, 5000, 'one instance left');
  await waitFor(() => audits(d.logs, 'tcpmux').some((e) => e.subordinate === 'held' && e.outcome === 'served'), 5000, 'first served');
  const fourth = await exchange({ port, send: ['held\r\nagain'], halfClose: true });
  assert.equal(fourth.data.toString('latin1'), '+\r\nagain');
  const refused = audits(d.logs, 'tcpmux').filter((e) => e.outcome === 'refused');
  assert.equal(refused.length, 1);
  assert.equal(refused[0]!.limit, 'max-instances');
  assert.equal(refused[0]!.service, 'held');
  second.socket.end();
  assert.equal(await second.closed, 'end');
});

test('master limits act at accept time, before the line is read', async (t) => {
  const d = await startTestDaemon(
    t,
    `
component tcpmux {
  socket inet://127.0.0.1:0;
  service tcpmux;
  flags internal;
  max-instances 1;
  max-instances-message "master busy\\r\\n";
}
component echo { tcpmux-master tcpmux; service echo; flags tcpmuxplus; command /bin/cat; }
`,
  );
  const port = d.port('tcpmux');
  const held = await openClient(t, { port });
  held.socket.write('echo\r\n');
  await held.until('+\r\n');
  // The master's own refusal: its message as configured (no `-` line: nothing was read).
  const refused = await exchange({ port, send: ['echo\r\n'] });
  assert.equal(refused.data.toString('latin1'), 'master busy\r\n');
  assert.equal(refused.closed, 'end');
  held.socket.end();
  assert.equal(await held.closed, 'end');
  await waitFor(() => audits(d.logs, 'tcpmux').length === 2, 5000, 'two audit events');
  const again = await exchange({ port, send: ['echo\r\nback'], halfClose: true });
  assert.equal(again.data.toString('latin1'), '+\r\nback');
  await waitFor(() => audits(d.logs, 'tcpmux').length === 3, 5000, 'three audit events');
  const events = audits(d.logs, 'tcpmux');
  assert.deepEqual(
    events.map((e) => [e.outcome, e.limit]),
    [
      ['refused', 'max-instances'],
      ['served', undefined],
      ['served', undefined],
    ],
  );
});

test('subordinate settings are layered global → master → own; sockenv over IPv6', async (t) => {
  const d = await startTestDaemon(
    t,
    `
env { set "A=global"; set "B=global"; }
umask 077;
component tcpmux {
  socket "inet6://[::]:0";
  service tcpmux;
  flags internal;
  env { set "B=master"; set "C=master"; }
  umask 027;
  chdir /tmp;
}
component layered {
  tcpmux-master tcpmux;
  service layered;
  flags (tcpmuxplus, sockenv);
  command "{{bin}}/print-context.js A B C PROTO LOCALIP LOCALPORT REMOTEIP REMOTEPORT";
  env { set "C=own"; }
}
component own {
  tcpmux-master tcpmux;
  service own;
  flags tcpmuxplus;
  command "{{bin}}/print-context.js A B C";
  umask 022;
  chdir /;
}
`,
  );
  const port = d.port('tcpmux');
  const context = async (name: string, host: string): Promise<{ client: Client; ctx: { umask: string; cwd: string; env: Record<string, string> } }> => {
    const client = await openClient(t, { port, host });
    client.socket.write(`${name}\r\n`);
    assert.equal(await client.closed, 'end');
    const text = client.received().toString('latin1');
    assert.ok(text.startsWith('+\r\n'), text);
    return { client, ctx: JSON.parse(text.slice(3)) as { umask: string; cwd: string; env: Record<string, string> } };
  };
  const v6 = await context('layered', '::1');
  assert.deepEqual(v6.ctx.env, {
    A: 'global',
    B: 'master',
    C: 'own',
    PROTO: 'tcp',
    LOCALIP: '::1',
    LOCALPORT: String(port),
    REMOTEIP: '::1',
    REMOTEPORT: String(v6.client.localPort),
  });
  assert.equal(v6.ctx.umask, '0027');
  assert.equal(v6.ctx.cwd, '/tmp');
  const own = await context('own', '127.0.0.1');
  assert.deepEqual(own.ctx.env, { A: 'global', B: 'master', C: 'master' });
  assert.equal(own.ctx.umask, '0022');
  assert.equal(own.ctx.cwd, '/');
});

test('one audit event per connection with the right fields', async (t) => {
  const d = await startTestDaemon(t, CONFIG);
  const port = d.port('tcpmux');
  const hit = await openClient(t, { port });
  hit.socket.end('echo\r\nabc');
  assert.equal(await hit.closed, 'end');
  const miss = await openClient(t, { port });
  miss.socket.write('nope\r\n');
  assert.equal(await miss.closed, 'end');
  const help = await openClient(t, { port });
  help.socket.write('HELP\r\n');
  assert.equal(await help.closed, 'end');
  const long = await openClient(t, { port });
  long.socket.write(`${'q'.repeat(600)}\r\n`);
  assert.equal(await long.closed, 'end');
  const eof = await openClient(t, { port });
  eof.socket.end('echo');
  assert.equal(await eof.closed, 'end');

  await waitFor(() => audits(d.logs, 'tcpmux').length === 5, 5000, 'five audit events');
  const byPort = (c: Client): LogEntry[] => audits(d.logs, 'tcpmux').filter((e) => e.peer === `127.0.0.1:${c.localPort}`);
  for (const c of [hit, miss, help, long, eof]) {
    const events = byPort(c);
    assert.equal(events.length, 1, `one event for client port ${c.localPort}`);
    assert.equal(events[0]!.local, `127.0.0.1:${port}`);
    assert.equal(typeof events[0]!.durationMs, 'number');
    assert.equal(events[0]!.level, 'info');
  }
  const h = byPort(hit)[0]!;
  assert.equal(h.outcome, 'served');
  assert.equal(h.service, 'echo');
  assert.equal(h.subordinate, 'echo');
  assert.equal(h.exitCode, 0);
  assert.equal(typeof h.childPid, 'number');
  assert.equal(byPort(miss)[0]!.outcome, 'miss');
  assert.equal(byPort(miss)[0]!.service, 'nope');
  assert.equal(byPort(miss)[0]!.childPid, undefined);
  assert.equal(byPort(help)[0]!.outcome, 'help');
  assert.equal(byPort(long)[0]!.outcome, 'line-too-long');
  assert.equal(byPort(eof)[0]!.outcome, 'closed-by-client');
});

test('clients that connect and reset at once never hurt the master', async (t) => {
  const d = await startTestDaemon(t, CONFIG);
  const port = d.port('tcpmux');
  const N = 150;
  for (let i = 0; i < N; i++) {
    const s = connect({ port, host: '127.0.0.1' });
    s.on('error', () => undefined);
    await new Promise((r) => s.once('connect', r));
    if (i % 3 === 1) s.write('ec');
    if (i % 3 === 2) s.write('echo\r\n');
    s.resetAndDestroy();
  }
  const r = await exchange({ port, send: ['echo\r\nstill-here'], halfClose: true });
  assert.equal(r.data.toString('latin1'), '+\r\nstill-here');
  await waitFor(() => audits(d.logs, 'tcpmux').length === N + 1, 10000, 'an audit event per connection');
  await waitFor(() => d.daemon.instances('echo') === 0, 5000, 'no children left');
  assert.deepEqual(
    d.logs.filter((e) => e.level === 'error' || e.level === 'fatal'),
    [],
  );
});

// A tcpmuxplus subordinate whose program is missing answers "-", never "+" then nothing.
test('a missing program gets a "-" reply, not "+"', async (t) => {
  const { port, logs } = await startTestDaemon(t, `
component tcpmux { socket inet://127.0.0.1:0; service tcpmux; flags internal; }
component ghost { tcpmux-master tcpmux; service ghost; flags tcpmuxplus; command /nonexistent/ghost; }
`);
  const r = await exchange({ port: port('tcpmux'), send: ['ghost\r\n'], halfClose: true });
  assert.equal(r.data.toString('latin1'), '-Service not available\r\n');
  await waitFor(() => logs.some((e) => e.msg === 'connection' && e.outcome === 'error'), 5000, 'audit event');
});
