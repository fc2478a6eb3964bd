// Closing many connections at the same moment — 10,000 idle TCPMUX clients reaching
// tcpmux-timeout together — costs the event loop ~60 µs each (the close and its audit
// line): a 0.6 s stall for everyone else. Such closes queue here and run a batch per turn
// of the loop, so the connections being served keep their latency.
import type { Socket } from 'node:net';

const BATCH = 64;
const queue: { socket: Socket; then: (() => void) | undefined }[] = [];
let scheduled = false;

/** Destroy `socket` (then run `then`) within a few turns of the event loop. */
export function destroyPaced(socket: Socket, then?: () => void): void {
  queue.push({ socket, then });
  if (scheduled) return;
  scheduled = true;
  setImmediate(drain);
}

function drain(): void {
  for (const { socket, then } of queue.splice(0, BATCH)) {
    socket.destroy();
    then?.();
  }
  if (queue.length > 0) setImmediate(drain);
  else scheduled = false;
}
