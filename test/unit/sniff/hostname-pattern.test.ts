// Host-name patterns for `sni` and `host` conditions: exact names and `*.domain` wildcards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileHostPatterns, isHostPattern } from '../../../src/sniff/hostname-pattern.js';

test('exact names, without regard to case', () => {
  const m = compileHostPatterns(['Example.ORG', '[::1]', '192.0.2.1']);
  assert.equal(m('example.org'), true);
  assert.equal(m('EXAMPLE.org'), true);
  assert.equal(m('example.org.'), true); // the same name, fully qualified
  assert.equal(m('www.example.org'), false);
  assert.equal(m('example.or'), false);
  assert.equal(m('[::1]'), true);
  assert.equal(m('192.0.2.1'), true);
  assert.equal(m(undefined), false);
  assert.equal(m(''), false);
});

test('*.domain: one or more labels, never the apex', () => {
  const m = compileHostPatterns(['*.Example.org']);
  assert.equal(m('a.example.org'), true);
  assert.equal(m('A.B.EXAMPLE.ORG'), true);
  assert.equal(m('example.org'), false);
  assert.equal(m('.example.org'), false);
  assert.equal(m('a..example.org'), false);
  assert.equal(m('aexample.org'), false);
  assert.equal(m('a.example.org.evil'), false);
  assert.equal(m(undefined), false);
});

test('apex and wildcard together; no patterns match nothing', () => {
  const m = compileHostPatterns(['example.org', '*.example.org', 'other.net']);
  for (const h of ['example.org', 'x.example.org', 'other.net']) assert.equal(m(h), true, h);
  assert.equal(m('x.other.net'), false);
  const none = compileHostPatterns([]);
  assert.equal(none('example.org'), false);
  assert.equal(none(undefined), false);
});

test('a * anywhere but a leading label is an ordinary character', () => {
  const m = compileHostPatterns(['a*.example.org', '*']);
  assert.equal(m('ab.example.org'), false);
  assert.equal(m('anything'), false);
  assert.equal(isHostPattern('a*.example.org'), false);
  assert.equal(isHostPattern('*'), false);
  assert.equal(isHostPattern('*.'), false);
  assert.equal(isHostPattern('*.*.org'), false);
  assert.equal(isHostPattern('a..b'), false);
  assert.equal(isHostPattern(''), false);
  assert.equal(isHostPattern('*.example.org'), true);
  assert.equal(isHostPattern('example.org.'), true);
  assert.equal(isHostPattern('[::1]'), true);
});

const label = fc.stringMatching(/^[a-z0-9-]{1,8}$/);
const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));

test('against a reference: exact or a proper subdomain of the wildcard', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), name), { maxLength: 4 }), name, fc.boolean(), (specs, host, upper) => {
      const patterns = specs.map(([wild, n]) => (wild ? `*.${n}` : n));
      const expected = specs.some(([wild, n]) => (wild ? host.endsWith(`.${n}`) : host === n));
      assert.equal(compileHostPatterns(patterns)(upper ? host.toUpperCase() : host), expected);
    }),
    { numRuns: 500 },
  );
});
