// No data lost (issue 8): TCPMUX connections whose payload, of random size from 0 to 256 KB,
// goes out in the same write as the service line, through `+echo` → /bin/cat. The master
// must not take one byte past the line (xinetd refuses such a request, inetutils drops what
// came with the name: ../shared/reference/peers.md §3), and every byte must come back in
// order: length and SHA-256 of what returned against `+` CRLF and the payload.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDaemonProcess } from './daemon-process.js';
import { SEED, record, seeded, size } from './lib.js';

const CONNECTIONS = size(300, 10_000);
const IN_FLIGHT = 32;
const MAX_PAYLOAD = 256 * 1024;
const REPLY = Buffer.from('+\r\n');

const CONFIG = `
component tcpmux { socket inet://127.0.0.1:0; service tcpmux; flags internal; tcpmux-timeout 10; }
component echo { tcpmux-master tcpmux; service echo; flags tcpmuxplus; command /bin/cat; }
`;

// Sizes from a seeded generator (mulberry32), so a failing run can be repeated with its seed.
function sizes(seed: number, count: number): number[] {
  const { next } = seeded(seed);
  // Both ends of the range on purpose: an empty payload and a full 256 KB one.
  return Array.from({ length: count }, (_, i) => (i === 0 ? 0 : i === 1 ? MAX_PAYLOAD : Math.floor(next() * (MAX_PAYLOAD + 1))));
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

// One connection: `echo` CRLF and the payload in one write, then FIN; the answer until the
// server's FIN, compared by length and hash.
function roundTrip(port: number, payload: Buffer): Promise<{ ok: boolean; detail: string }> {
  const expected = Buffer.concat([REPLY, payload]);
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const hash = createHash('sha256');
    let length = 0;
    const timer = setTimeout(() => done('timeout'), 30_000);
    const done = (how: string): void => {
      clearTimeout(timer);
      socket.destroy();
      const digest = hash.digest('hex');
      const ok = how === 'end' && length === expected.length && digest === sha256(expected);
      resolve({ ok, detail: ok ? '' : `${how}: sent ${payload.length} bytes, got ${length} back (expected ${expected.length})${length === expected.length ? ', bytes differ' : ''}` });
    };
    socket.on('connect', () => socket.end(Buffer.concat([Buffer.from('echo\r\n'), payload])));
    socket.on('data', (c: Buffer) => {
      hash.update(c);
      length += c.length;
    });
    socket.on('end', () => done('end'));
    socket.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? 'error'));
  });
}

test('no data lost: pipelined payloads of 0-256 KB come back whole and in order through +echo', { timeout: size(60_000, 600_000) }, async (t) => {
  const tpies = await startDaemonProcess(t, { config: CONFIG, keep: (l) => l.msg === 'connection' || l.msg === 'listening' || l.msg === 'tpies started' });
  const port = tpies.port('tcpmux');
  const seed = SEED;
  const plan = sizes(seed, CONNECTIONS);

  let next = 0;
  let failures = 0;
  const samples: string[] = [];
  let bytes = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < plan.length) {
        const payload = randomBytes(plan[next++]!);
        const r = await roundTrip(port, payload);
        bytes += payload.length;
        if (!r.ok) {
          failures++;
          if (samples.length < 5) samples.push(r.detail);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await sleep(300);
  const events = tpies.entries({ msg: 'connection' });
  const served = events.filter((l) => l['outcome'] === 'served' && l['exitCode'] === 0).length;
  const pass = failures === 0 && served === CONNECTIONS && tpies.running();

  record(t, {
    scenario: 'no data lost',
    figures: {
      connections: CONNECTIONS,
      'in flight': IN_FLIGHT,
      'payload sizes (bytes)': `0 to ${MAX_PAYLOAD}, seed ${seed}`,
      'payload bytes sent (MB)': Number((bytes / 2 ** 20).toFixed(1)),
      'duration (s)': Number(seconds.toFixed(2)),
      'conn/s': Math.round(CONNECTIONS / seconds),
      'MB/s each way': Number((bytes / 2 ** 20 / seconds).toFixed(1)),
      'connections with a byte missing, extra or out of order': failures,
      'audit events served with exit 0': served,
    },
    condition: 'every connection got exactly "+" CRLF and its payload back (length and SHA-256), then FIN; every audit event served with exit 0',
    pass,
  });

  assert.equal(failures, 0, `connections that lost data (seed ${seed}): ${samples.join('; ')}`);
  assert.equal(served, CONNECTIONS, 'audit events served with exit 0');
  assert.ok(tpies.running(), 'daemon running');
});
