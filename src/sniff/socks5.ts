// SOCKS5 (RFC 1928 §3): the client opens with VER=5, NMETHODS, then NMETHODS method bytes,
// and waits for the server's choice, so a whole greeting is what a client sends first.
import type { Verdict } from './verdict.js';

const VERSION = 0x05;

export function sniffSocks5(bytes: Buffer): Verdict {
  const version = bytes[0];
  if (version === undefined) return 'more';
  if (version !== VERSION) return 'no';
  const count = bytes[1];
  if (count === undefined) return 'more';
  if (count === 0) return 'no';
  const end = Math.min(bytes.length, 2 + count);
  for (let i = 2; i < end; i++) if (!isMethod(bytes[i] ?? 0xff)) return 'no';
  return end === 2 + count ? 'yes' : 'more';
}

// Assigned (0x00–0x09) and private (0x80–0xFE) methods. 0xFF is the server's "no acceptable
// methods" answer and 0x0A–0x7F are unassigned: a client offering them is not speaking SOCKS5.
function isMethod(m: number): boolean {
  return m <= 0x09 || (m >= 0x80 && m <= 0xfe);
}
