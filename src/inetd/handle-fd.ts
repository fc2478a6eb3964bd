// The file descriptor behind a net.Socket or net.Server. Node has no public accessor; the
// lossless TCPMUX hand-off and `mode accept` need the real fd (node-on-this-machine.md §3).
import type { Server, Socket } from 'node:net';

export function handleFd(target: Socket | Server): number | undefined {
  const handle = (target as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
