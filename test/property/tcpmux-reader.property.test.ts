// Property tests for the TCPMUX line reader: any chunking of the same bytes gives the same
// result, that result is what a one-pass model of the rules says, and no byte is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createLineReader, lineComplete } from '../../src/tcpmux/protocol.js';

type Outcome =
  | { state: 'line'; line: string; rest: string }
  | { state: 'too-long' }
  | { state: 'eof'; partial: string }
  | { state: 'more' };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// The rules, read off the whole input at once.
function model(input: Uint8Array, max: number, eof: boolean): Outcome {
  const lf = input.indexOf(0x0a);
  if (lf === -1) {
    if (input.length >= max) return { state: 'too-long' };
    return eof ? { state: 'eof', partial: hex(input) } : { state: 'more' };
  }
  if (lf + 1 > max) return { state: 'too-long' };
  const end = lf > 0 && input[lf - 1] === 0x0d ? lf - 1 : lf;
  return { state: 'line', line: hex(input.subarray(0, end)), rest: hex(input.subarray(lf + 1)) };
}

// Feed the chunks in order; whatever was not fed after a final result counts as `rest`.
function run(chunks: readonly Uint8Array[], max: number, eof: boolean): Outcome {
  const reader = createLineReader({ maxLineBytes: max });
  for (let i = 0; i < chunks.length; i++) {
    const r = reader.push(chunks[i]!);
    if (r.state === 'more') continue;
    if (r.state === 'line') {
      assert.equal(r.name, r.line.toString('latin1'));
      return { state: 'line', line: hex(r.line), rest: hex(r.rest) + chunks.slice(i + 1).map(hex).join('') };
    }
    if (r.state === 'eof') throw new Error('push returned eof');
    return { state: r.state };
  }
  if (!eof) return { state: 'more' };
  const r = reader.end();
  if (r.state !== 'eof') throw new Error(`end returned ${r.state}`);
  return { state: 'eof', partial: hex(r.partial) };
}

// Bytes rich in the ones that matter (CR, LF, letters), plus anything else.
const bytesArb = fc
  .array(fc.oneof(fc.constantFrom(0x0a, 0x0d), fc.constantFrom(0x65, 0x63, 0x68, 0x6f), fc.integer({ min: 0, max: 255 })), { maxLength: 80 })
  .map((a) => Uint8Array.from(a));

// The input cut at arbitrary points, empty chunks included.
const chunkedArb = bytesArb.chain((bytes) =>
  fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 12 }).map((cuts) => {
    const points = [0, ...cuts.sort((x, y) => x - y), bytes.length];
    const chunks = points.slice(1).map((p, i) => bytes.subarray(points[i]!, p));
    return { bytes, chunks };
  }),
);

test('any chunking gives the same result as one chunk, and both follow the model', () => {
  fc.assert(
    fc.property(chunkedArb, fc.integer({ min: 1, max: 48 }), fc.boolean(), ({ bytes, chunks }, max, eof) => {
      const whole = run([bytes], max, eof);
      assert.deepEqual(run(chunks, max, eof), whole);
      assert.deepEqual(whole, model(bytes, max, eof));
    }),
    { numRuns: 3000 },
  );
});

test('a line result loses no byte: line + terminator + rest is the input', () => {
  fc.assert(
    fc.property(chunkedArb, fc.integer({ min: 1, max: 48 }), ({ bytes, chunks }, max) => {
      const r = run(chunks, max, false);
      if (r.state !== 'line') return;
      const lf = bytes.indexOf(0x0a);
      const terminator = hex(bytes.subarray(r.line.length / 2, lf + 1));
      assert.ok(terminator === '0a' || terminator === '0d0a');
      assert.equal(r.line + terminator + r.rest, hex(bytes));
    }),
    { numRuns: 2000 },
  );
});

test('the byte-at-a-time reader (read until lineComplete) gets the same line and never over-reads', () => {
  fc.assert(
    fc.property(bytesArb, fc.integer({ min: 1, max: 48 }), (bytes, max) => {
      let n = 0;
      while (n < bytes.length && n < max && !lineComplete(bytes.subarray(0, n))) n++;
      if (!lineComplete(bytes.subarray(0, n))) return; // it would keep waiting or give up on length
      const got = run([bytes.subarray(0, n)], max, false);
      const expected = model(bytes, max, false);
      if (expected.state === 'line') {
        assert.deepEqual(got, { ...expected, rest: '' });
        assert.equal(hex(bytes.subarray(n)), expected.rest);
      } else assert.deepEqual(got, expected);
    }),
    { numRuns: 2000 },
  );
});
