// Builds ClientHello bytes for the TLS sniffer tests, and re-frames handshake bytes into
// records of chosen sizes (as a client with large key shares would send them).

export interface HelloParts {
  readonly sni?: string;
  readonly alpn?: readonly string[];
  readonly sessionId?: Buffer;
  readonly suites?: readonly number[];
  /** Further extensions, [type, data]; the builder puts SNI and ALPN first. */
  readonly extensions?: readonly (readonly [number, Buffer])[];
  /** Leave the extensions block out altogether. */
  readonly noExtensions?: boolean;
}

const u8 = (n: number): Buffer => Buffer.from([n]);
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number): Buffer => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
export const vec8 = (b: Buffer): Buffer => Buffer.concat([u8(b.length), b]);
export const vec16 = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
export const extension = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), vec16(data)]);

export const sniExtension = (host: string): Buffer =>
  extension(0, vec16(Buffer.concat([u8(0), vec16(Buffer.from(host, 'latin1'))])));
export const alpnExtension = (names: readonly string[]): Buffer =>
  extension(16, vec16(Buffer.concat(names.map((n) => vec8(Buffer.from(n, 'latin1'))))));

/** The ClientHello body (no handshake header) with `extensions` as given, verbatim. */
export function helloBody(extensions: Buffer | undefined, parts: HelloParts = {}): Buffer {
  const suites = parts.suites ?? [0x1301, 0x1302, 0xc02f];
  return Buffer.concat([
    u16(0x0303),
    Buffer.alloc(32, 0xab),
    vec8(parts.sessionId ?? Buffer.alloc(32, 7)),
    vec16(Buffer.concat(suites.map(u16))),
    vec8(u8(0)),
    ...(extensions === undefined ? [] : [vec16(extensions)]),
  ]);
}

/** A whole handshake message: type 1, 24-bit length, body. */
export const handshake = (body: Buffer, type = 1): Buffer => Buffer.concat([u8(type), u24(body.length), body]);

export function clientHello(parts: HelloParts = {}): Buffer {
  const exts: Buffer[] = [];
  if (parts.sni !== undefined) exts.push(sniExtension(parts.sni));
  if (parts.alpn !== undefined) exts.push(alpnExtension(parts.alpn));
  for (const [type, data] of parts.extensions ?? []) exts.push(extension(type, data));
  return handshake(helloBody(parts.noExtensions ? undefined : Buffer.concat(exts), parts));
}

export const record = (fragment: Buffer, type = 0x16, version = 0x0301): Buffer =>
  Buffer.concat([u8(type), u16(version), u16(fragment.length), fragment]);

/** `message` cut into records of the given sizes in turn (the last size repeats). */
export function frame(message: Buffer, sizes: readonly number[] = [16384]): Buffer {
  const records: Buffer[] = [];
  let pos = 0;
  for (let i = 0; pos < message.length; i++) {
    const size = sizes[Math.min(i, sizes.length - 1)] ?? 16384;
    records.push(record(message.subarray(pos, pos + size)));
    pos += size;
  }
  return Buffer.concat(records);
}

/** The handshake bytes inside a run of records (for re-framing a real hello). */
export function unframe(bytes: Buffer): { handshake: Buffer; records: number } {
  const parts: Buffer[] = [];
  let pos = 0;
  while (pos + 5 <= bytes.length) {
    const length = bytes.readUInt16BE(pos + 3);
    parts.push(bytes.subarray(pos + 5, pos + 5 + length));
    pos += 5 + length;
  }
  const all = Buffer.concat(parts);
  return { handshake: all.subarray(0, 4 + all.readUIntBE(1, 3)), records: parts.length };
}
