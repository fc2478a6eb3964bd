// The spawner thread's body (see spawner-thread.ts): runs each posix_spawn it is sent,
// synchronously, and answers with the pid or the errno. With vfork semantics posix_spawn
// holds the calling thread until the child has exec'd; here that thread is this one, not the
// event loop, and it has a core of its own.
import { parentPort } from 'node:worker_threads';
import { type PosixSpawnRequest, loadPosixSpawn } from './posix-spawn.js';

const ENOSYS = 38;
const spawner = loadPosixSpawn();

parentPort?.on('message', (message: { id: number; request: PosixSpawnRequest }) => {
  const result = spawner instanceof Error ? { errno: ENOSYS } : spawner.spawn(message.request);
  parentPort?.postMessage({ id: message.id, result });
});
