// Unit tests for the pure TCPMUX protocol core: line reading, name classification, replies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type LineResult,
  classifyServiceName,
  createLineReader,
  formatHelpListing,
  formatNegativeReply,
  formatPositiveReply,
  lineComplete,
  negativeReply,
  serviceKey,
} from '../../../src/tcpmux/protocol.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

// Feed chunks until a final result; returns it plus any chunks left unfed.
function feed(chunks: readonly Buffer[], max = 512, eof = false): { result: LineResult; unfed: Buffer[] } {
  const reader = createLineReader({ maxLineBytes: max });
  for (let i = 0; i < chunks.length; i++) {
    const r = reader.push(chunks[i]!);
    if (r.state !== 'more') return { result: r, unfed: chunks.slice(i + 1) };
  }
  return { result: eof ? reader.end() : { state: 'more' }, unfed: [] };
}

function lineOf(r: LineResult): { line: string; rest: string } {
  assert.equal(r.state, 'line');
  if (r.state !== 'line') throw new Error('unreachable');
  assert.equal(r.name, r.line.toString('latin1'));
  return { line: r.line.toString('latin1'), rest: r.rest.toString('latin1') };
}

test('CRLF ends the line and the CR is dropped', () => {
  assert.deepEqual(lineOf(feed([b('echo\r\n')]).result), { line: 'echo', rest: '' });
});

test('a lone LF ends the line too', () => {
  assert.deepEqual(lineOf(feed([b('echo\n')]).result), { line: 'echo', rest: '' });
});

test('a CR not followed by LF does not end the line', () => {
  assert.deepEqual(feed([b('echo\r')]).result, { state: 'more' });
  // It stays in the name, which is then a miss.
  const r = lineOf(feed([b('echo\rx\r\n')]).result);
  assert.equal(r.line, 'echo\rx');
  assert.deepEqual(classifyServiceName(b(r.line)), { kind: 'miss', reason: 'control-byte' });
  // Only one CR before the LF is part of the terminator.
  assert.equal(lineOf(feed([b('echo\r\r\n')]).result).line, 'echo\r');
});

test('CR and LF in separate chunks still make CRLF, leaving no stray LF in rest', () => {
  assert.deepEqual(lineOf(feed([b('echo\r'), b('\npayload')]).result), { line: 'echo', rest: 'payload' });
});

test('every split point of "echo\\r\\npayload" gives the same line and rest', () => {
  const whole = b('echo\r\npayload');
  for (let i = 0; i <= whole.length; i++) {
    const { result, unfed } = feed([whole.subarray(0, i), whole.subarray(i)]);
    const got = lineOf(result);
    assert.equal(got.line, 'echo', `split at ${i}`);
    assert.equal(got.rest + Buffer.concat(unfed).toString('latin1'), 'payload', `split at ${i}`);
  }
});

test('one byte at a time, then the rest', () => {
  const reader = createLineReader({ maxLineBytes: 512 });
  const bytes = b('EcHo\r\n');
  let r: LineResult = { state: 'more' };
  for (const byte of bytes) {
    assert.equal(r.state, 'more');
    r = reader.push(Uint8Array.of(byte));
  }
  assert.deepEqual(lineOf(r), { line: 'EcHo', rest: '' });
});

test('the caller may reuse its chunk buffer after push', () => {
  const reader = createLineReader({ maxLineBytes: 512 });
  const one = Buffer.alloc(3);
  one.write('ech', 'latin1');
  assert.equal(reader.push(one).state, 'more');
  one.write('o\nZ', 'latin1');
  const r = reader.push(one);
  one.fill(0);
  assert.deepEqual(lineOf(r), { line: 'echo', rest: 'Z' });
});

test('rest keeps every byte after the LF exactly, binary included', () => {
  const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const r = feed([Buffer.concat([b('echo\r\n'), payload, b('\r\n\n')])]).result;
  assert.equal(r.state, 'line');
  if (r.state === 'line') assert.deepEqual(r.rest, Buffer.concat([payload, b('\r\n\n')]));
});

test('a 10 KB line is too long, in one chunk or many', () => {
  const big = Buffer.concat([Buffer.alloc(10 * 1024, 'a'), b('\r\n')]);
  assert.deepEqual(feed([big]).result, { state: 'too-long' });
  const chunks = Array.from({ length: Math.ceil(big.length / 100) }, (_, i) => big.subarray(i * 100, i * 100 + 100));
  const { result, unfed } = feed(chunks);
  assert.deepEqual(result, { state: 'too-long' });
  // Decided as soon as the cap is passed, without reading the remaining 9.5 KB.
  assert.ok(unfed.length > 90);
});

test('maxLineBytes counts the terminator', () => {
  assert.equal(feed([b('abc\r\n')], 5).result.state, 'line');
  assert.equal(feed([b('abcd\n')], 5).result.state, 'line');
  assert.equal(feed([b('abcd\r\n')], 5).result.state, 'too-long');
  // Five bytes and no LF: the LF can no longer fit, so there is no point waiting.
  assert.equal(feed([b('abcd\r')], 5).result.state, 'too-long');
  assert.equal(feed([b('abc\r')], 5).result.state, 'more');
});

test('EOF before a terminator is no line', () => {
  assert.deepEqual(feed([b('echo')], 512, true).result, { state: 'eof', partial: b('echo') });
  assert.deepEqual(feed([], 512, true).result, { state: 'eof', partial: b('') });
});

test('a finished reader refuses more input', () => {
  const reader = createLineReader({ maxLineBytes: 512 });
  assert.equal(reader.push(b('echo\n')).state, 'line');
  assert.throws(() => reader.push(b('x')), /already finished/);
  assert.throws(() => reader.end(), /already finished/);
});

test('lineComplete is true once an LF has arrived', () => {
  assert.equal(lineComplete(b('')), false);
  assert.equal(lineComplete(b('echo\r')), false);
  assert.equal(lineComplete(b('echo\r\n')), true);
  assert.equal(lineComplete(b('\n')), true);
});

test('help in any case is the listing', () => {
  for (const s of ['help', 'HELP', 'HeLp']) assert.deepEqual(classifyServiceName(b(s)), { kind: 'help' });
  assert.deepEqual(classifyServiceName(b('help ')), { kind: 'service', key: 'help ' });
});

test('names are lower-cased keys, not trimmed', () => {
  assert.deepEqual(classifyServiceName(b('ECHO')), { kind: 'service', key: 'echo' });
  assert.deepEqual(classifyServiceName(b(' echo')), { kind: 'service', key: ' echo' });
  assert.deepEqual(classifyServiceName(b('+echo')), { kind: 'service', key: '+echo' });
  assert.equal(serviceKey('EcHo'), 'echo');
});

test('empty, control and non-ASCII names are misses, never truncated matches', () => {
  assert.deepEqual(classifyServiceName(b('')), { kind: 'miss', reason: 'empty' });
  assert.deepEqual(classifyServiceName(b('echo\0junk')), { kind: 'miss', reason: 'control-byte' });
  assert.deepEqual(classifyServiceName(b('echo\t')), { kind: 'miss', reason: 'control-byte' });
  assert.deepEqual(classifyServiceName(b('echo\x7f')), { kind: 'miss', reason: 'control-byte' });
  // The first offending byte names the reason.
  assert.deepEqual(classifyServiceName(b('\x01\xff\0\x80\x7f')), { kind: 'miss', reason: 'control-byte' });
  assert.deepEqual(classifyServiceName(b('echo\xff')), { kind: 'miss', reason: 'non-ascii' });
  assert.deepEqual(classifyServiceName(Buffer.from('échо', 'utf8')), { kind: 'miss', reason: 'non-ascii' });
});

test('replies are exactly the protocol bytes', () => {
  assert.deepEqual(formatPositiveReply(), b('+\r\n'));
  assert.deepEqual(formatPositiveReply('Go'), b('+Go\r\n'));
  assert.deepEqual(formatNegativeReply('Service not available'), b('-Service not available\r\n'));
  assert.deepEqual(negativeReply('unknown-service'), b('-Service not available\r\n'));
  assert.deepEqual(negativeReply('too-many-instances', 'busy, try later'), b('-busy, try later\r\n'));
  // Nothing can end the line early or put a NUL into the client's stream.
  assert.deepEqual(formatNegativeReply('a\r\nb\0c'), b('-a b c\r\n'));
  assert.deepEqual(formatPositiveReply('ok\u00e9'), b('+ok \r\n'));
});

test('help lists names in the order given, CRLF each, leaving out unusable names', () => {
  assert.deepEqual(formatHelpListing(['echo', 'Date', 'env']), b('echo\r\nDate\r\nenv\r\n'));
  assert.deepEqual(formatHelpListing([]), b(''));
  assert.deepEqual(formatHelpListing(['ok', 'bad\r\nname', '', 'caf\u00e9']), b('ok\r\n'));
});
