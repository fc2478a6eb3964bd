// Unit tests for the pure helpers of the built-in services (src/inetd/builtins.ts): the
// daytime line (ctime(3) format), the qotd text (CRLF, 512-byte cap) and chargen lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { chargenLine, daytime, qotdText } from '../../../src/inetd/builtins.js';

// ---- daytime -------------------------------------------------------------------------------

// Dates are built from local-time fields: daytime prints local time, so these hold in any TZ.
test('daytime: ctime(3) format for fixed dates', () => {
  assert.equal(daytime(new Date(2026, 10, 22, 0, 23, 13)), 'Sun Nov 22 00:23:13 2026');
  assert.equal(daytime(new Date(1999, 11, 31, 23, 59, 59)), 'Fri Dec 31 23:59:59 1999');
  assert.equal(daytime(new Date(2000, 1, 29, 12, 0, 0)), 'Tue Feb 29 12:00:00 2000');
  assert.equal(daytime(new Date(2023, 6, 15, 8, 30, 0)), 'Sat Jul 15 08:30:00 2023');
});

test('daytime: a single-digit day is padded with a space, not a zero', () => {
  assert.equal(daytime(new Date(2024, 0, 5, 9, 3, 7)), 'Fri Jan  5 09:03:07 2024');
  assert.equal(daytime(new Date(2025, 5, 1, 0, 0, 0)), 'Sun Jun  1 00:00:00 2025');
  assert.equal(daytime(new Date(2025, 2, 9, 1, 2, 3)), 'Sun Mar  9 01:02:03 2025');
});

test('daytime: always 24 characters in the ctime layout (property)', () => {
  fc.assert(
    fc.property(fc.date({ min: new Date(1000, 0, 1), max: new Date(9999, 11, 31), noInvalidDate: true }), (d) => {
      const s = daytime(d);
      assert.match(s, /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d \d\d:\d\d:\d\d \d{4}$/);
      assert.equal(s.length, 24);
      // It agrees with the engine's own local-time rendering ("Sun Nov 22 2026 00:23:13 …").
      const [dow, mon, day, year, time] = d.toString().split(' ');
      assert.equal(s, `${dow} ${mon} ${day!.replace(/^0/, ' ')} ${time} ${year}`);
    }),
  );
});

// ---- qotd ----------------------------------------------------------------------------------

test('qotd: LF becomes CRLF', () => {
  assert.equal(qotdText(Buffer.from('one\ntwo\n')).toString('latin1'), 'one\r\ntwo\r\n');
  assert.equal(qotdText(Buffer.from('\n\n')).toString('latin1'), '\r\n\r\n');
  assert.equal(qotdText(Buffer.from('no newline')).toString('latin1'), 'no newline');
});

test('qotd: CRLF is kept as it is (no CR CR LF)', () => {
  assert.equal(qotdText(Buffer.from('one\r\ntwo\r\n')).toString('latin1'), 'one\r\ntwo\r\n');
  assert.equal(qotdText(Buffer.from('mixed\r\nends\nhere\r\n')).toString('latin1'), 'mixed\r\nends\r\nhere\r\n');
  // A lone CR is not a line end and is left alone.
  assert.equal(qotdText(Buffer.from('a\rb\n')).toString('latin1'), 'a\rb\r\n');
});

test('qotd: at most 512 bytes', () => {
  assert.equal(qotdText(Buffer.alloc(0)).length, 0);
  assert.equal(qotdText(Buffer.alloc(512, 'x')).length, 512);
  const long = qotdText(Buffer.alloc(10_000, 'x'));
  assert.equal(long.length, 512);
  assert.ok(long.equals(Buffer.alloc(512, 'x')));
  // The cap applies after CRLF conversion: 300 LFs become 600 bytes, cut at 512.
  const lines = qotdText(Buffer.alloc(300, '\n'));
  assert.equal(lines.length, 512);
  assert.equal(lines.toString('latin1'), '\r\n'.repeat(256));
});

test('qotd: bytes that are not ASCII pass through unchanged', () => {
  const utf8 = Buffer.from('Grüße — 名言\n', 'utf8');
  assert.ok(qotdText(utf8).equals(Buffer.concat([utf8.subarray(0, utf8.length - 1), Buffer.from('\r\n')])));
  const binary = Buffer.from([0x00, 0xff, 0x80, 0x0a, 0xc3]);
  assert.ok(qotdText(binary).equals(Buffer.from([0x00, 0xff, 0x80, 0x0d, 0x0a, 0xc3])));
});

test('qotd: output has no bare LF and never exceeds 512 bytes (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
      const out = qotdText(Buffer.from(bytes));
      assert.ok(out.length <= 512);
      for (let i = 0; i < out.length; i++) if (out[i] === 0x0a) assert.equal(out[i - 1], 0x0d, `bare LF at ${i}`);
      // With the cap out of the way, removing the CRs added gives the input back.
      const input = Buffer.from(bytes);
      if (out.length < 512) {
        const back = Buffer.from(out.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
        assert.ok(back.equals(Buffer.from(input.toString('latin1').replace(/\r\n/g, '\n'), 'latin1')));
      }
    }),
  );
});

// ---- chargen -------------------------------------------------------------------------------

const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');

test('chargen: line 0 is the first 72 printable characters and CRLF', () => {
  assert.equal(chargenLine(0), `${PRINTABLE.slice(0, 72)}\r\n`);
  assert.equal(chargenLine(0), ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n');
});

test('chargen: every line is 72 printable characters and CRLF', () => {
  for (let n = 0; n < 200; n++) {
    const line = chargenLine(n);
    assert.equal(line.length, 74);
    assert.ok(line.endsWith('\r\n'));
    assert.match(line.slice(0, 72), /^[\x20-\x7e]{72}$/);
  }
});

test('chargen: lines rotate through the 95 printable characters', () => {
  // Line 23 ends exactly at "~"; line 24 is the first to wrap around back to " ".
  assert.equal(chargenLine(23), `${PRINTABLE.slice(23)}\r\n`);
  assert.equal(chargenLine(24), `${PRINTABLE.slice(24)} \r\n`);
  assert.equal(chargenLine(94), `~${PRINTABLE.slice(0, 71)}\r\n`);
  // After 95 lines the pattern repeats.
  for (let n = 0; n < 95; n++) assert.equal(chargenLine(n + 95), chargenLine(n));
  // And the 95 lines of one period are all different.
  assert.equal(new Set(Array.from({ length: 95 }, (_, n) => chargenLine(n))).size, 95);
});

test('chargen: line n+1 is line n shifted left by one character', () => {
  for (let n = 0; n < 190; n++) {
    const a = chargenLine(n).slice(0, 72);
    const b = chargenLine(n + 1).slice(0, 72);
    assert.equal(b.slice(0, 71), a.slice(1), `line ${n + 1}`);
    // The new last character is the one after line n's last, wrapping "~" → " ".
    const next = 32 + ((a.charCodeAt(71) - 32 + 1) % 95);
    assert.equal(b.charCodeAt(71), next);
  }
});

test('chargen: line n starts with printable character n mod 95 (property)', () => {
  fc.assert(
    fc.property(fc.nat({ max: 1_000_000 }), (n) => {
      const line = chargenLine(n);
      assert.equal(line[0], PRINTABLE[n % 95]);
      assert.equal(line, `${(PRINTABLE + PRINTABLE).slice(n % 95, (n % 95) + 72)}\r\n`);
    }),
  );
});
