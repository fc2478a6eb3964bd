// Listening on a socket, shared by the inetd listeners and the control server: a promise
// around listen(), and the rule for a unix socket file already in the way.
import { lstatSync, unlinkSync } from 'node:fs';
import { type Server, createConnection } from 'node:net';

// Resolve once listening, reject with the bind error.
export function listenOn(server: Server, options: Parameters<Server['listen']>[0]): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Why a path cannot take a new unix socket, if it cannot. */
export type StaleSocketProblem = 'not-a-socket' | 'in-use';

// A socket file nobody answers on is left over from a crash: remove it. A socket in use, or
// a file that is no socket, is reported and left alone (never delete what we did not create).
export async function clearStaleSocket(path: string): Promise<StaleSocketProblem | undefined> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return undefined;
  }
  if (!isSocket) return 'not-a-socket';
  const inUse = await new Promise<boolean>((resolve) => {
    const probe = createConnection({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (inUse) return 'in-use';
  removeSocketFile(path);
  return undefined;
}

export function removeSocketFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
