// Unit tests for per-component connection limits (src/inetd/limits.ts): max-instances,
// max-ip-connections, the sliding one-minute max-rate window (explicit clock values),
// release, reload via update(), and a fast-check model of admit/release sequences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConnectionLimits, type LimitSettings } from '../../../src/inetd/limits.js';

const T0 = 1_700_000_000_000;
const MINUTE = 60_000;

test('no limits: everything is admitted and counted', () => {
  const l = new ConnectionLimits({});
  for (let i = 0; i < 1000; i++) assert.equal(l.admit('10.0.0.1', T0), undefined);
  assert.equal(l.live, 1000);
  for (let i = 0; i < 1000; i++) l.release('10.0.0.1');
  assert.equal(l.live, 0);
});

test('maxRate 0 means unlimited', () => {
  const l = new ConnectionLimits({ maxRate: 0 });
  for (let i = 0; i < 500; i++) assert.equal(l.admit(undefined, T0), undefined);
});

test('max-instances: refuses the N+1st live connection, admits again after a release', () => {
  const l = new ConnectionLimits({ maxInstances: 3 });
  assert.equal(l.admit('10.0.0.1', T0), undefined);
  assert.equal(l.admit('10.0.0.2', T0), undefined);
  assert.equal(l.admit(undefined, T0), undefined);
  assert.equal(l.live, 3);
  assert.equal(l.admit('10.0.0.3', T0), 'max-instances');
  assert.equal(l.admit(undefined, T0), 'max-instances');
  assert.equal(l.live, 3, 'a refused connection is not counted');
  l.release('10.0.0.2');
  assert.equal(l.live, 2);
  assert.equal(l.admit('10.0.0.3', T0), undefined);
  assert.equal(l.admit('10.0.0.4', T0), 'max-instances');
});

test('max-instances 0 refuses everything', () => {
  const l = new ConnectionLimits({ maxInstances: 0 });
  assert.equal(l.admit('10.0.0.1', T0), 'max-instances');
  assert.equal(l.live, 0);
});

test('max-ip-connections counts each IP on its own', () => {
  const l = new ConnectionLimits({ maxIpConnections: 2 });
  assert.equal(l.admit('10.0.0.1', T0), undefined);
  assert.equal(l.admit('10.0.0.1', T0), undefined);
  assert.equal(l.admit('10.0.0.1', T0), 'max-ip-connections');
  // Other addresses are not affected.
  assert.equal(l.admit('10.0.0.2', T0), undefined);
  assert.equal(l.admit('10.0.0.2', T0), undefined);
  assert.equal(l.admit('10.0.0.2', T0), 'max-ip-connections');
  assert.equal(l.admit('::1', T0), undefined);
  // A connection without an IP (unix socket) is never limited per IP.
  for (let i = 0; i < 5; i++) assert.equal(l.admit(undefined, T0), undefined);
  assert.equal(l.live, 10);
  // Releasing one of 10.0.0.1's connections lets one more in, for that IP only.
  l.release('10.0.0.1');
  assert.equal(l.admit('10.0.0.1', T0), undefined);
  assert.equal(l.admit('10.0.0.1', T0), 'max-ip-connections');
  assert.equal(l.admit('10.0.0.2', T0), 'max-ip-connections');
});

test('max-instances is checked before max-ip-connections', () => {
  const l = new ConnectionLimits({ maxInstances: 1, maxIpConnections: 1 });
  assert.equal(l.admit('10.0.0.1', T0), undefined);
  assert.equal(l.admit('10.0.0.1', T0), 'max-instances');
});

test('max-rate: N per sliding minute, refused at N+1, admitted again once the oldest leaves', () => {
  const l = new ConnectionLimits({ maxRate: 3 });
  assert.equal(l.admit('10.0.0.1', T0), undefined);
  assert.equal(l.admit('10.0.0.1', T0 + 10_000), undefined);
  assert.equal(l.admit('10.0.0.1', T0 + 20_000), undefined);
  // Releasing does not give rate back: the rate counts accepts, not live connections.
  l.release('10.0.0.1');
  l.release('10.0.0.1');
  l.release('10.0.0.1');
  assert.equal(l.admit('10.0.0.1', T0 + 30_000), 'max-rate');
  assert.equal(l.admit('10.0.0.2', T0 + MINUTE - 1), 'max-rate', 'other IPs share the rate');
  // At T0 + 60 s the first accept is a full minute old and leaves the window.
  assert.equal(l.admit('10.0.0.1', T0 + MINUTE), undefined);
  assert.equal(l.admit('10.0.0.1', T0 + MINUTE + 1), 'max-rate');
  // The second (T0 + 10 s) leaves at T0 + 70 s.
  assert.equal(l.admit('10.0.0.1', T0 + MINUTE + 9_999), 'max-rate');
  assert.equal(l.admit('10.0.0.1', T0 + MINUTE + 10_000), undefined);
});

test('max-rate: refused attempts do not fill the window', () => {
  const l = new ConnectionLimits({ maxRate: 2 });
  assert.equal(l.admit(undefined, T0), undefined);
  assert.equal(l.admit(undefined, T0 + 1), undefined);
  // A flood of refused attempts just before the first accept leaves the window…
  for (let i = 0; i < 100; i++) assert.equal(l.admit(undefined, T0 + MINUTE - 1), 'max-rate');
  // …does not push the next admission any further out.
  assert.equal(l.admit(undefined, T0 + MINUTE), undefined);
  assert.equal(l.admit(undefined, T0 + MINUTE + 1), undefined);
  assert.equal(l.admit(undefined, T0 + MINUTE + 2), 'max-rate');
});

test('max-rate: after a quiet minute the whole budget is back', () => {
  const l = new ConnectionLimits({ maxRate: 5 });
  for (let i = 0; i < 5; i++) assert.equal(l.admit(undefined, T0 + i), undefined);
  assert.equal(l.admit(undefined, T0 + 5), 'max-rate');
  for (let i = 0; i < 5; i++) assert.equal(l.admit(undefined, T0 + 10 * MINUTE + i), undefined);
  assert.equal(l.admit(undefined, T0 + 10 * MINUTE + 5), 'max-rate');
});

test('connections refused by max-instances or max-ip-connections do not use up the rate', () => {
  const l = new ConnectionLimits({ maxInstances: 1, maxRate: 2 });
  assert.equal(l.admit('10.0.0.1', T0), undefined);
  for (let i = 0; i < 10; i++) assert.equal(l.admit('10.0.0.1', T0 + 1), 'max-instances');
  l.release('10.0.0.1');
  assert.equal(l.admit('10.0.0.1', T0 + 2), undefined, 'the second of two allowed per minute');
  l.release('10.0.0.1');
  assert.equal(l.admit('10.0.0.1', T0 + 3), 'max-rate');
});

test('release is symmetric with admit, and clamps at zero', () => {
  const l = new ConnectionLimits({ maxIpConnections: 1, maxInstances: 2 });
  assert.equal(l.admit('10.0.0.1', T0), undefined);
  assert.equal(l.admit('10.0.0.1', T0), 'max-ip-connections');
  l.release('10.0.0.1');
  assert.equal(l.live, 0);
  assert.equal(l.admit('10.0.0.1', T0), undefined, 'the per-IP count went back to zero');
  l.release('10.0.0.1');
  // Extra releases (a bug elsewhere) must not make room beyond the limits.
  l.release('10.0.0.1');
  l.release(undefined);
  assert.equal(l.live, 0);
  assert.equal(l.admit('10.0.0.1', T0), undefined);
  assert.equal(l.admit('10.0.0.1', T0), 'max-ip-connections');
  assert.equal(l.admit('10.0.0.2', T0), undefined);
  assert.equal(l.admit('10.0.0.3', T0), 'max-instances');
});

test('update() applies new limits and keeps the live counts', () => {
  const l = new ConnectionLimits({ maxInstances: 10, maxIpConnections: 10 });
  for (let i = 0; i < 4; i++) assert.equal(l.admit('10.0.0.1', T0), undefined);
  assert.equal(l.live, 4);

  // Lowered below what is live: nothing is dropped, nothing new gets in.
  l.update({ maxInstances: 3 });
  assert.equal(l.live, 4);
  assert.equal(l.admit('10.0.0.2', T0), 'max-instances');
  l.release('10.0.0.1');
  assert.equal(l.admit('10.0.0.2', T0), 'max-instances', '3 still live');
  l.release('10.0.0.1');
  assert.equal(l.admit('10.0.0.2', T0), undefined);

  // Per-IP counts carry over too: 10.0.0.1 still has 2 live.
  l.update({ maxIpConnections: 2 });
  assert.equal(l.live, 3);
  assert.equal(l.admit('10.0.0.1', T0), 'max-ip-connections');
  assert.equal(l.admit('10.0.0.2', T0), undefined);
  assert.equal(l.admit('10.0.0.2', T0), 'max-ip-connections');

  // Limits removed: everything is admitted, and releases still balance.
  l.update({});
  assert.equal(l.admit('10.0.0.1', T0), undefined);
  assert.equal(l.live, 5);
  for (let i = 0; i < 3; i++) l.release('10.0.0.1');
  for (let i = 0; i < 2; i++) l.release('10.0.0.2');
  assert.equal(l.live, 0);
});

test('update() adding max-rate starts counting from then on', () => {
  const l = new ConnectionLimits({});
  for (let i = 0; i < 10; i++) assert.equal(l.admit(undefined, T0), undefined);
  l.update({ maxRate: 2 });
  assert.equal(l.admit(undefined, T0 + 1), undefined);
  assert.equal(l.admit(undefined, T0 + 2), undefined);
  assert.equal(l.admit(undefined, T0 + 3), 'max-rate');
});

// ---- property ------------------------------------------------------------------------------

type Op = { readonly kind: 'admit'; readonly ip: string | undefined; readonly dt: number } | { readonly kind: 'release'; readonly index: number } | { readonly kind: 'update'; readonly settings: LimitSettings };

const ip = fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.3', '::1', undefined);
const settings: fc.Arbitrary<LimitSettings> = fc.record(
  { maxInstances: fc.integer({ min: 0, max: 6 }), maxRate: fc.integer({ min: 0, max: 10 }), maxIpConnections: fc.integer({ min: 0, max: 4 }) },
  { requiredKeys: [] },
);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('admit' as const), ip, dt: fc.integer({ min: 0, max: 30_000 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), index: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('update' as const), settings }) },
);

test('live is never negative, never above max-instances once admitted under it, and matches a model (property)', () => {
  fc.assert(
    fc.property(settings, fc.array(op, { maxLength: 200 }), (initial, ops) => {
      const l = new ConnectionLimits(initial);
      let current = initial;
      let now = T0;
      const held: (string | undefined)[] = [];
      const accepts: number[] = [];
      for (const o of ops) {
        if (o.kind === 'admit') {
          now += o.dt;
          const before = l.live;
          const hit = l.admit(o.ip, now);
          const perIp = held.filter((h) => h === o.ip).length;
          const recent = accepts.filter((t) => now - t < 60_000).length;
          // The model: which limit (if any) must refuse, checked in the documented order.
          const expected =
            current.maxInstances !== undefined && held.length >= current.maxInstances
              ? 'max-instances'
              : current.maxIpConnections !== undefined && o.ip !== undefined && perIp >= current.maxIpConnections
                ? 'max-ip-connections'
                : current.maxRate && recent >= current.maxRate
                  ? 'max-rate'
                  : undefined;
          assert.equal(hit, expected);
          if (hit === undefined) {
            held.push(o.ip);
            if (current.maxRate) accepts.push(now);
            assert.equal(l.live, before + 1);
            if (current.maxInstances !== undefined) assert.ok(l.live <= current.maxInstances, `live ${l.live} > maxInstances ${current.maxInstances}`);
          } else {
            assert.equal(l.live, before, 'a refusal changes nothing');
          }
        } else if (o.kind === 'release') {
          if (held.length === 0) continue;
          const [released] = held.splice(o.index % held.length, 1);
          l.release(released);
        } else {
          current = o.settings;
          // Accepts made while max-rate is off are not recorded; earlier ones still count
          // (within their minute) if it is turned on again.
          l.update(current);
        }
        assert.ok(l.live >= 0, 'live is never negative');
        assert.equal(l.live, held.length);
      }
      for (const h of held) l.release(h);
      assert.equal(l.live, 0);
    }),
    { numRuns: 300 },
  );
});

test('live never exceeds max-instances when the limit never changes (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 8 }), fc.array(fc.oneof(fc.constant<'admit'>('admit'), fc.constant<'release'>('release')), { maxLength: 300 }), (max, ops) => {
      const l = new ConnectionLimits({ maxInstances: max });
      let maxSeen = 0;
      for (const o of ops) {
        if (o === 'admit') l.admit(undefined, T0);
        else l.release(undefined);
        assert.ok(l.live >= 0);
        assert.ok(l.live <= max);
        maxSeen = Math.max(maxSeen, l.live);
      }
      if (ops.filter((o) => o === 'admit').length > 0 && max > 0) assert.ok(maxSeen >= 1);
    }),
    { numRuns: 300 },
  );
});
