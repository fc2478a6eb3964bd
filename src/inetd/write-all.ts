// Resolve once `data` has been handed to the kernel (or the socket is gone): a reply that
// must precede what a child or a backend sends next.
import type { Socket } from 'node:net';

export function writeAll(socket: Socket, data: Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.write(data, () => resolve());
  });
}
