// Closing a connection we answered ourselves (a refusal, a `-` reply, help): send the bytes
// and a FIN, then read and drop what the client still sends until its FIN, for a short
// while. Closing with unread input would send a reset, and a reset can make the client's
// kernel drop our reply before the client reads it.
import type { Socket } from 'node:net';
import { discardInput } from '../tcpmux/read-line.js';

const LINGER_MS = 2_000;
const LINGER_MAX_BYTES = 64 * 1024;

export function closeAfter(socket: Socket, data?: Uint8Array | string): void {
  if (socket.destroyed) return;
  socket.on('error', () => socket.destroy());
  socket.once('end', () => socket.destroy());
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  socket.once('close', () => clearTimeout(timer));
  if (data !== undefined && data.length > 0) socket.end(data);
  else socket.end();
  discardInput(socket, LINGER_MAX_BYTES);
}
