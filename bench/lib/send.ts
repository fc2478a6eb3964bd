// Write `bytes` bytes of `chunk` (repeated) to `socket` with backpressure, then half-close.
import type { Socket } from 'node:net';

export function sendBytes(socket: Socket, bytes: number, chunk: Buffer): void {
  let left = bytes;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void socket.once('drain', pump);
    }
    socket.end();
  };
  pump();
}
