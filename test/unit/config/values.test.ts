// config/values.ts and the small readers: C-like integers, durations, and the socket URL
// parser's refusals, checked directly rather than through whole config files.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLimits } from '../../../src/config/read/limits.js';
import { MAX_SECONDS, parseInteger } from '../../../src/config/values.js';
import { parseSocketAddress } from '../../../src/inetd/socket-address.js';

test('parseInteger reads numbers the C way: 0x hex, leading-0 octal, else decimal', () => {
  const cases: ReadonlyArray<[string, number]> = [
    ['0', 0], ['7', 7], ['10', 10], ['-3', -3], ['+4', 4], ['0x1F', 31], ['0X10', 16], ['010', 8], ['0777', 511], ['-017', -15], ['00', 0],
  ];
  for (const [text, n] of cases) assert.equal(parseInteger(text), n, text);
});

test('parseInteger refuses a leading 0 followed by 8 or 9 (no octal digit), as C does', () => {
  for (const text of ['08', '09', '0789', '-08', '+09', '0008']) assert.equal(parseInteger(text), undefined, text);
});

test('parseInteger refuses garbage and numbers beyond a safe integer', () => {
  for (const text of ['', 'x', '1.5', '1e3', '0x', '12a', '9007199254740993']) assert.equal(parseInteger(text), undefined, text);
});

test('MAX_SECONDS is the longest whole number of seconds a Node timer holds', () => {
  assert.equal(MAX_SECONDS, 2147483);
  assert.ok(MAX_SECONDS * 1000 <= 2 ** 31 - 1);
  assert.ok((MAX_SECONDS + 1) * 1000 > 2 ** 31 - 1);
});

test('parseLimits: numbers must be safe integers', () => {
  assert.deepEqual(parseLimits('N9007199254740991'), { limits: { nofile: 9007199254740991 } });
  assert.ok('error' in parseLimits('N9007199254740992'));
  assert.ok('error' in parseLimits('N100000000000000000000000'));
  // L is ignored whatever its number.
  assert.deepEqual(parseLimits('L100000000000000000000000'), { limits: {} });
});

test('socket URLs: an IPv6 address without brackets is refused, not split at the last colon', () => {
  for (const url of ['inet6://::1:7000', 'inet6://::1', 'inet://::1:7000', 'inet6://fe80::1:echo', 'inet://1:2:3']) {
    const parsed = parseSocketAddress(url);
    assert.ok('error' in parsed, url);
    assert.match(parsed.error, /IPv6 addresses go in brackets/, url);
  }
  assert.deepEqual(parseSocketAddress('inet6://[::1]:7000'), { address: { kind: 'inet', family: 6, host: '::1', port: 7000, url: 'inet6://[::1]:7000' } });
  assert.deepEqual(parseSocketAddress('inet6://:7000'), { address: { kind: 'inet', family: 6, host: '::', port: 7000, url: 'inet6://:7000' } });
});

test('socket URLs: udp is unsupported (a refused pies feature), other mistakes are plain errors', () => {
  assert.deepEqual(parseSocketAddress('inet+udp://127.0.0.1:7'), { error: 'protocol "udp" is not supported: tpies serves stream (tcp) sockets only', unsupported: true });
  const bad = parseSocketAddress('inet://127.0.0.1:70000');
  assert.ok('error' in bad && bad.unsupported === undefined);
});
