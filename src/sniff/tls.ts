// TLS ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2), with the server name (RFC 6066 §3)
// and the ALPN protocols (RFC 7301) a client offers, for `sni` and `alpn` match conditions.
//
// The hello is read as far as it has arrived, so a malformed one is `no` as soon as its
// bytes show it, not only when the rest comes. It may span several records (post-quantum key
// shares push it past one 16 KiB record), so the handshake bytes are reassembled first.
// SSLv2-compatible hellos are not recognised: no client from this century sends one.
import type { Verdict } from './verdict.js';

export type TlsSniff =
  | { readonly verdict: Exclude<Verdict, 'yes'> }
  | { readonly verdict: 'yes'; readonly sni?: string; readonly alpn: readonly string[] };

/** The longest ClientHello body accepted; a longer one is `no` rather than waited for. */
export const MAX_CLIENT_HELLO = 64 * 1024;

const RECORD_HEADER = 5;
const CONTENT_HANDSHAKE = 0x16;
const MAX_FRAGMENT = 1 << 14; // RFC 8446 §5.1: TLSPlaintext.length
const HANDSHAKE_HEADER = 4;
const CLIENT_HELLO = 1;
const MAX_SESSION_ID = 32;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const NAME_TYPE_HOST = 0;

export function sniffTls(bytes: Buffer): TlsSniff {
  const message = reassemble(bytes);
  if (typeof message === 'string') return { verdict: message };
  try {
    const offer = parseClientHello(new Cursor(message.body, 0, message.length));
    // Skipped parts at the end need no bytes to parse, but the hello is whole only with them.
    return message.body.length < message.length ? { verdict: 'more' } : { verdict: 'yes', ...offer };
  } catch (e) {
    if (e instanceof Stop) return { verdict: e.verdict };
    throw e;
  }
}

// ---- the record layer ----------------------------------------------------------------------

interface Message {
  /** The ClientHello body bytes that have arrived (not more than `length`). */
  readonly body: Buffer;
  /** The body length its handshake header declares. */
  readonly length: number;
}

// Collect handshake bytes from consecutive records until the ClientHello is whole or the
// bytes run out. Records after the hello (early data) are not looked at.
function reassemble(bytes: Buffer): Message | 'no' | 'more' {
  const fragments: Buffer[] = [];
  const header = Buffer.alloc(HANDSHAKE_HEADER);
  let have = 0;
  let need = HANDSHAKE_HEADER;
  let pos = 0;
  while (have < need) {
    const record = recordLength(bytes.subarray(pos, pos + RECORD_HEADER));
    if (record === 'no') return 'no';
    if (record === 'more') break;
    const fragment = bytes.subarray(pos + RECORD_HEADER, pos + RECORD_HEADER + record);
    if (have < HANDSHAKE_HEADER) fragment.copy(header, have, 0, HANDSHAKE_HEADER - have);
    fragments.push(fragment);
    have += fragment.length;
    if (fragment.length < record) break;
    pos += RECORD_HEADER + record;
    if (need === HANDSHAKE_HEADER && have >= HANDSHAKE_HEADER) need += header.readUIntBE(1, 3);
    if (need > HANDSHAKE_HEADER + MAX_CLIENT_HELLO) return 'no';
  }
  // A partial handshake header is judged on what it shows: the type, and the length as at
  // least its known high bytes.
  const known = Math.min(have, HANDSHAKE_HEADER);
  if (known >= 1 && header[0] !== CLIENT_HELLO) return 'no';
  if (known > 1 && header.readUIntBE(1, 3) > MAX_CLIENT_HELLO) return 'no';
  if (known < HANDSHAKE_HEADER) return 'more';
  const length = header.readUIntBE(1, 3);
  const body = Buffer.concat(fragments, have).subarray(HANDSHAKE_HEADER, HANDSHAKE_HEADER + length);
  return { body, length };
}

// A record carrying (part of) the hello: handshake content, major version 3, minor 0 (SSL 3)
// to 4, and a non-empty fragment (RFC 8446 §5.1 forbids empty handshake fragments).
// A partial header is judged on the bytes it has.
function recordLength(header: Buffer): number | 'no' | 'more' {
  const [type, major, minor, high, low] = header;
  if (type !== undefined && type !== CONTENT_HANDSHAKE) return 'no';
  if (major !== undefined && major !== 3) return 'no';
  if (minor !== undefined && minor > 4) return 'no';
  if (high !== undefined && high << 8 > MAX_FRAGMENT) return 'no';
  if (high === undefined || low === undefined) return 'more';
  const length = (high << 8) | low;
  return length === 0 || length > MAX_FRAGMENT ? 'no' : length;
}

// ---- the ClientHello -----------------------------------------------------------------------

// Thrown by the cursor when a read leaves the structure (`no`) or the bytes that arrived
// (`more`); caught in sniffTls only.
class Stop {
  constructor(readonly verdict: 'no' | 'more') {}
}
const NO = new Stop('no');
const MORE = new Stop('more');

// Reads inside [pos, end), where `end` comes from the length fields; `buf.length` is what has
// arrived. Skipping needs no bytes, so unread parts never make the answer wait.
class Cursor {
  constructor(
    private readonly buf: Buffer,
    private pos: number,
    private readonly end: number,
  ) {}

  get done(): boolean {
    return this.pos === this.end;
  }

  skip(n: number): number {
    if (this.pos + n > this.end) throw NO;
    const at = this.pos;
    this.pos += n;
    return at;
  }

  take(n: number): Buffer {
    const at = this.ready(n);
    return this.buf.subarray(at, at + n);
  }

  // The integers are read in place: a subarray per field made a hello of many small
  // extensions ten times slower.
  u8(): number {
    return this.buf.readUInt8(this.ready(1));
  }

  u16(): number {
    return this.buf.readUInt16BE(this.ready(2));
  }

  // Consume `n` bytes that must have arrived; where they start.
  private ready(n: number): number {
    const at = this.skip(n);
    if (at + n > this.buf.length) throw MORE;
    return at;
  }

  /** Bytes left in the structure, arrived or not. */
  get size(): number {
    return this.end - this.pos;
  }

  /** The bytes of the rest of the structure that have arrived so far, not consumed. */
  arrived(): Buffer {
    return this.buf.subarray(this.pos, Math.min(this.end, this.buf.length));
  }

  rest(): Buffer {
    return this.take(this.size);
  }

  /** The next `n` bytes as a structure of their own. */
  sub(n: number): Cursor {
    return new Cursor(this.buf, this.skip(n), this.pos);
  }

  /** A vector with a `lengthBytes` length prefix, `min` to `max` bytes long. */
  vector(lengthBytes: 1 | 2, min: number, max = Number.MAX_SAFE_INTEGER): Cursor {
    const n = lengthBytes === 1 ? this.u8() : this.u16();
    if (n < min || n > max) throw NO;
    return this.sub(n);
  }
}

interface Offer {
  sni?: string;
  alpn: readonly string[];
}

function parseClientHello(c: Cursor): Offer {
  if (c.u8() !== 3) throw NO; // legacy_version major
  c.skip(1 + 32); // its minor, random
  c.vector(1, 0, MAX_SESSION_ID);
  if (c.vector(2, 2).size % 2 !== 0) throw NO; // cipher suites, two bytes each
  c.vector(1, 1); // compression methods
  const offer: Offer = { alpn: [] };
  if (c.done) return offer; // a hello without extensions (SSL 3, old TLS)
  const extensions = c.vector(2, 0);
  if (!c.done) throw NO;
  // RFC 8446 §4.2: no extension type twice. One bit per type, 8 KiB.
  const seen = new Uint8Array(0x10000 / 8);
  while (!extensions.done) {
    const type = extensions.u16();
    const data = extensions.vector(2, 0);
    const bit = 1 << (type & 7);
    if (((seen[type >> 3] ?? 0) & bit) !== 0) throw NO;
    seen[type >> 3] = (seen[type >> 3] ?? 0) | bit;
    if (type === EXT_SERVER_NAME) {
      const host = serverName(data);
      if (host !== undefined) offer.sni = host;
    } else if (type === EXT_ALPN) offer.alpn = protocols(data);
  }
  return offer;
}

// The host_name entry of a server_name list (RFC 6066 §3: one name per type). The name is
// ASCII (IDNs travel as A-labels), compared in lower case.
function serverName(data: Cursor): string | undefined {
  const list = data.vector(2, 1);
  if (!data.done) throw NO;
  let host: string | undefined;
  while (!list.done) {
    const type = list.u8();
    const name = list.vector(2, 1);
    if (type !== NAME_TYPE_HOST) continue;
    if (host !== undefined) throw NO;
    host = hostName(name);
  }
  return host;
}

function hostName(name: Cursor): string {
  // The arrived part first, so a bad byte is `no` before the rest of the name comes.
  for (const b of name.arrived()) if (b <= 0x20 || b >= 0x7f) throw NO;
  return name.rest().toString('latin1').toLowerCase();
}

// RFC 7301 §3.1: a non-empty list of non-empty protocol names, opaque bytes kept as latin1.
function protocols(data: Cursor): string[] {
  const list = data.vector(2, 2);
  if (!data.done) throw NO;
  const names: string[] = [];
  while (!list.done) {
    const name = list.vector(1, 1);
    names.push(name.rest().toString('latin1'));
  }
  return names;
}
