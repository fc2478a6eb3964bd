// Built-in inetd services (pies manual, builtin): echo (RFC 862), discard (863), chargen
// (864), qotd (865), daytime (867) and time (868), served in-process on the accepted socket.
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { InternalService } from '../config/model.js';
import { closeAfter } from './linger.js';

// Seconds between 1900-01-01 (RFC 868's epoch) and 1970-01-01.
const RFC868_OFFSET = 2_208_988_800;
const QOTD_MAX_BYTES = 512;

export type BuiltinService = Exclude<InternalService, 'tcpmux'>;

// Serve `service` on `socket`; resolves once the connection is closed.
export function serveBuiltin(service: BuiltinService, socket: Socket, options: { qotdFile?: string; now?: () => Date } = {}): Promise<void> {
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => socket.destroy());
  const now = options.now ?? (() => new Date());
  switch (service) {
    case 'echo':
      socket.pipe(socket);
      break;
    case 'discard':
      socket.on('end', () => socket.end());
      socket.resume();
      break;
    case 'daytime':
      closeAfter(socket, `${daytime(now())}\r\n`);
      break;
    case 'time': {
      const seconds = Buffer.alloc(4);
      seconds.writeUInt32BE((Math.floor(now().getTime() / 1000) + RFC868_OFFSET) % 2 ** 32);
      closeAfter(socket, seconds);
      break;
    }
    case 'chargen':
      chargen(socket);
      break;
    case 'qotd':
      readFile(options.qotdFile ?? '/etc/motd').then(
        (text) => closeAfter(socket, qotdText(text)),
        () => closeAfter(socket),
      );
      break;
  }
  return closed;
}

// ctime(3) style, as inetd's daytime service prints it: "Sun Nov 22 00:23:13 2026".
export function daytime(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${d.getFullYear()}`;
}

// LF → CRLF, at most 512 bytes (pies manual: qotd).
export function qotdText(text: Buffer): Buffer {
  const crlf = Buffer.from(text.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
  const cut = crlf.subarray(0, QOTD_MAX_BYTES);
  // Never end on half a CRLF.
  return cut.length === QOTD_MAX_BYTES && cut[cut.length - 1] === 0x0d ? cut.subarray(0, -1) : cut;
}

// RFC 864: 72-character lines rotating through the 95 printable ASCII characters.
export function chargenLine(n: number): string {
  let line = '';
  for (let i = 0; i < 72; i++) line += String.fromCharCode(32 + ((n + i) % 95));
  return `${line}\r\n`;
}

// Lines go out in small batches with a turn of the event loop between them: a loopback
// peer takes megabytes before write() says "full", and one client must not hold the daemon.
const CHARGEN_BATCH_LINES = 64;

function chargen(socket: Socket): void {
  let n = 0;
  const pump = (): void => {
    if (socket.destroyed || !socket.writable) return;
    let batch = '';
    for (let i = 0; i < CHARGEN_BATCH_LINES; i++, n = (n + 1) % 95) batch += chargenLine(n);
    if (socket.write(batch)) setImmediate(pump);
  };
  socket.on('drain', pump);
  socket.on('end', () => socket.destroy());
  socket.resume();
  pump();
}
