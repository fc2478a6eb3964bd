// `mode accept`: the program gets the listening socket on stdin/stdout and accepts itself.
// Node cannot hold a listening socket without accepting on it, so tpies binds it, hands it
// to the new process and closes its own copy in the same tick (no connection can be accepted
// by the parent meanwhile). While the program is down the socket is unbound; pies keeps it.
import { isIP } from 'node:net';
import { createServer } from 'node:net';
import type { SocketAddress } from '../config/model.js';
import type { Child } from '../supervisor/spawn.js';
import { handleFd } from './handle-fd.js';

// Bind `address`, start the program with the listening fd, release ours.
export function launchWithListeningSocket(address: SocketAddress, launch: (fd: number) => Child): Child {
  // libuv unlinks a unix socket's file when the parent closes its copy, which would leave
  // the program with a socket nobody can reach.
  if (address.kind === 'unix') throw new Error(`mode accept supports inet sockets only, not ${address.url}`);
  if (isIP(address.host) === 0) {
    throw new Error(`mode accept needs a numeric address, not "${address.host}" (${address.url})`);
  }
  const server = createServer();
  let bindError: Error | undefined;
  server.on('error', (error) => (bindError = error));
  // A numeric address binds and listens synchronously inside listen().
  server.listen({ host: address.host, port: address.port, backlog: 511 });
  const fd = handleFd(server);
  try {
    if (fd === undefined) throw new Error(`cannot listen on ${address.url}${bindError ? `: ${bindError.message}` : ''}`);
    return launch(fd);
  } finally {
    server.close();
  }
}
