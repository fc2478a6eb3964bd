// posix_spawn on a thread of its own. koffi's async calls cost the event loop ~50-200 µs
// each (measured: more than the spawn saves), so per-connection spawns go to one worker
// thread that calls posix_spawn synchronously: the loop pays a message each way (~20 µs)
// and the vfork wait happens on the other core. Started on first use, so an idle daemon
// carries no second isolate; unref'd, so it never keeps tpies alive. Node 20 gives workers
// no module hooks, so when the sources run through tsx (the in-process tests) the entry
// cannot load and spawns take the threadpool path; the built daemon (e2e and reliability
// tests, benchmarks) uses the thread.
import { Worker } from 'node:worker_threads';
import type { PosixSpawnRequest, PosixSpawnResult } from './posix-spawn.js';

export interface SpawnerThread {
  spawnAsync(request: PosixSpawnRequest): Promise<PosixSpawnResult>;
}

let thread: { worker: Worker; pending: Map<number, { resolve: (r: PosixSpawnResult) => void; reject: (e: Error) => void }> } | undefined;
let broken: Error | undefined;
let nextId = 1;

// The thread, started if need be; an Error once it has failed (callers fall back).
export function spawnerThread(): SpawnerThread | Error {
  if (broken) return broken;
  return { spawnAsync };
}

function spawnAsync(request: PosixSpawnRequest): Promise<PosixSpawnResult> {
  const t = thread ?? start();
  if (t instanceof Error) return Promise.reject(t);
  const id = nextId++;
  return new Promise((resolve, reject) => {
    t.pending.set(id, { resolve, reject });
    t.worker.ref();
    t.worker.postMessage({ id, request });
  });
}

function start(): NonNullable<typeof thread> | Error {
  try {
    // The entry sits next to this file (.js when built; tsx maps it to .ts in tests).
    const worker = new Worker(new URL('./spawner-worker.js', import.meta.url));
    const started = { worker, pending: new Map<number, { resolve: (r: PosixSpawnResult) => void; reject: (e: Error) => void }>() };
    worker.unref();
    worker.on('message', (message: { id: number; result: PosixSpawnResult }) => {
      const waiter = started.pending.get(message.id);
      started.pending.delete(message.id);
      if (started.pending.size === 0) worker.unref();
      waiter?.resolve(message.result);
    });
    const fail = (error: Error): void => {
      broken = error;
      thread = undefined;
      for (const waiter of started.pending.values()) waiter.reject(error);
      started.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`spawner thread exited (${code})`)));
    thread = started;
    return started;
  } catch (error) {
    broken = error instanceof Error ? error : new Error(String(error));
    return broken;
  }
}
