// The TCPMUX (RFC 1078) wire protocol as pure functions: reading the service-name line from
// chunks without losing what follows it, classifying the name, and the exact reply bytes.
const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);
// Returned for every byte of a line still arriving: one object, not one per byte.
const MORE: LineResult = { state: 'more' };

/** What a LineReader has after a push or end. `line` and `too-long` and `eof` are final. */
export type LineResult =
  | { readonly state: 'more' }
  | {
      readonly state: 'line';
      /** The service-name bytes, terminator removed, exactly as sent; classify with classifyServiceName. */
      readonly line: Buffer;
      /** `line` decoded byte-for-byte (latin1), for logs only: never compare it with names. */
      readonly name: string;
      /** Bytes after the LF: the start of the client's stream, owed to the child in order. */
      readonly rest: Buffer;
    }
  | { readonly state: 'too-long' }
  | {
      readonly state: 'eof';
      /** Whatever arrived without a terminator (for logs). */
      readonly partial: Buffer;
    };

export interface LineReader {
  /** Feed the next bytes; the chunk may be reused by the caller once this returns. */
  push(chunk: Uint8Array): LineResult;
  /** The client closed (or half-closed) before a line ended. */
  end(): LineResult;
}

export interface LineReaderOptions {
  /** Most bytes the line may take, terminator included (config: `tcpmux-line-max`). */
  readonly maxLineBytes: number;
}

// Reads the one request line RFC 1078 defines ("a service name, terminated by CR-LF").
// Decisions, all independent of how the bytes were split into chunks:
// * LF ends the line and a CR right before it is dropped; a lone LF is accepted as inetd
//   does, because LF is unambiguous.
// * A CR not followed by LF does not end the line (xinetd agrees, inetutils does not): it
//   stays in the name, which then never matches. Ending at a bare CR would need to see the
//   next byte to know if it is CRLF's LF; a CRLF split across segments would otherwise
//   leave a stray LF at the head of the child's stream, and a CR-only client would hang.
// * EOF before LF is no line at all ('eof'): the caller closes without a reply. RFC 1078
//   asks for CRLF, and a client that half-closes before finishing its request cannot be
//   told which service it reached anyway. (inetutils runs the service; xinetd closes.)
// * More than maxLineBytes without LF is 'too-long' as soon as it is known, so a client
//   cannot make us buffer more than the cap.
// * Bytes after the LF come back as `rest`, never dropped (xinetd and inetutils both lose them).
export function createLineReader(options: LineReaderOptions): LineReader {
  const max = Math.max(1, Math.floor(options.maxLineBytes));
  // Grown on the first byte: an idle client costs no buffer (nor work for the GC).
  let buffer = EMPTY;
  let length = 0;
  let finished: LineResult | undefined;

  const store = (bytes: Uint8Array): void => {
    if (length + bytes.length > buffer.length) {
      const grown = Buffer.alloc(Math.min(max, Math.max(buffer.length * 2, length + bytes.length, 64)));
      buffer.copy(grown, 0, 0, length);
      buffer = grown;
    }
    buffer.set(bytes, length);
    length += bytes.length;
  };
  const finish = (result: LineResult): LineResult => {
    finished = result;
    buffer = EMPTY;
    return result;
  };
  const guard = (): void => {
    // A final result has been handed out; more input here is a bug in the caller.
    if (finished !== undefined) throw new Error(`tcpmux line reader: already finished (${finished.state})`);
  };

  return {
    push(chunk) {
      guard();
      const lf = chunk.indexOf(LF);
      // Without an LF, reaching the cap already means the LF would land past it.
      if (lf === -1 ? length + chunk.length >= max : length + lf + 1 > max) return finish({ state: 'too-long' });
      if (lf === -1) {
        store(chunk);
        return MORE;
      }
      store(chunk.subarray(0, lf));
      const end = length > 0 && buffer[length - 1] === CR ? length - 1 : length;
      const line = Buffer.from(buffer.subarray(0, end));
      const rest = Buffer.from(chunk.subarray(lf + 1));
      return finish({ state: 'line', line, name: line.toString('latin1'), rest });
    },
    end() {
      guard();
      return finish({ state: 'eof', partial: Buffer.from(buffer.subarray(0, length)) });
    },
  };
}

// For the byte-at-a-time socket reader (node-on-this-machine §3, a1): it reads one byte at a
// time so it never over-reads, and stops once this is true; the bytes then go to
// createLineReader().push(), which yields the line with an empty `rest`.
export function lineComplete(bytes: Uint8Array): boolean {
  return bytes.indexOf(LF) !== -1;
}

/** What a service-name line asks for. */
export type ServiceRequest =
  | { readonly kind: 'help' }
  | { readonly kind: 'service'; readonly key: string }
  | { readonly kind: 'miss'; readonly reason: 'empty' | 'control-byte' | 'non-ascii' };

// Turn a line into a lookup. RFC 1078: names are case-insensitive, so the key is lower-cased
// ASCII; look it up among serviceKey(name) of the master's subordinates. Not trimmed: ` echo`
// and `echo ` miss, as with xinetd and inetutils. Unlike both, a NUL or any control byte makes
// the whole name a miss instead of cutting the name short (`echo\0junk` must not start echo).
// `help` in any case is always the listing (pies manual, TCPMUX), even if a subordinate is
// named so.
export function classifyServiceName(raw: Uint8Array): ServiceRequest {
  if (raw.length === 0) return { kind: 'miss', reason: 'empty' };
  for (const byte of raw) {
    if (byte >= 0x80) return { kind: 'miss', reason: 'non-ascii' };
    if (byte < 0x20 || byte === 0x7f) return { kind: 'miss', reason: 'control-byte' };
  }
  const key = Buffer.from(raw).toString('latin1').toLowerCase();
  return key === 'help' ? { kind: 'help' } : { kind: 'service', key };
}

// The lookup key of a configured service name, matching classifyServiceName's keys.
export function serviceKey(name: string): string {
  return name.toLowerCase();
}

/** Short texts for `-` replies; the client learns no more than that it was refused. */
export const NEGATIVE_REPLY_TEXT = {
  // inetutils' wording; also used for names we refuse to look up (control bytes, empty).
  'unknown-service': 'Service not available',
  'line-too-long': 'Service name too long',
  'access-denied': 'Access denied',
  'too-many-instances': 'Too many instances',
  'spawn-failed': 'Service not available',
} as const satisfies Record<string, string>;

export type NegativeReason = keyof typeof NEGATIVE_REPLY_TEXT;

// RFC 1078: "+" (optionally followed by a message) and CRLF accepts the request. pies sends
// a bare "+\r\n" for tcpmuxplus; unlike xinetd, no NUL follows (it would reach the client's
// stream as data).
export function formatPositiveReply(text = ''): Buffer {
  return Buffer.from(`+${replyText(text)}\r\n`, 'latin1');
}

// RFC 1078: "-" (optionally followed by a message) and CRLF refuses; the master then closes.
export function formatNegativeReply(text: string): Buffer {
  return Buffer.from(`-${replyText(text)}\r\n`, 'latin1');
}

// The `-` reply for one of the fixed reasons, or a configured message (e.g. max-instances-message).
export function negativeReply(reason: NegativeReason, message?: string): Buffer {
  return formatNegativeReply(message ?? NEGATIVE_REPLY_TEXT[reason]);
}

// pies manual, TCPMUX: `help` lists the subordinate names, one per CRLF-terminated line,
// then closes. The caller passes this master's enabled subordinates in config order
// (inetutils prints reverse order; config order is what users expect). A name that could
// never be requested (empty, control or non-ASCII bytes) is left out, so the listing cannot
// break the line framing.
export function formatHelpListing(names: readonly string[]): Buffer {
  let text = '';
  for (const name of names) if (/^[\x20-\x7e]+$/.test(name)) text += `${name}\r\n`;
  return Buffer.from(text, 'latin1');
}

// A reply line carries one line of printable ASCII: anything else (CR, LF, NUL, UTF-8) could
// end the line early or smuggle bytes into the client's stream, so runs of it become one space.
function replyText(text: string): string {
  return text.replace(/[^\x20-\x7e]+/g, ' ');
}
