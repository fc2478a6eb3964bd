// SSH (RFC 4253 §4.2): the client's first bytes are its identification string, `SSH-2.0-…`.
// Only a server may send other lines before its own; a client starts with `SSH-`, so four
// bytes decide (the version after it is the server's business, as in sslh).
import type { Verdict } from './verdict.js';

const PREFIX = Buffer.from('SSH-', 'latin1');

export function sniffSsh(bytes: Buffer): Verdict {
  const n = Math.min(bytes.length, PREFIX.length);
  if (bytes.compare(PREFIX, 0, n, 0, n) !== 0) return 'no';
  return n === PREFIX.length ? 'yes' : 'more';
}
