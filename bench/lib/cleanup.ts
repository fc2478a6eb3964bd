// Everything a benchmark starts (daemons, peers, load clients, temp dirs) is registered here
// with two ways to undo it: an async one for the normal path and Ctrl-C, and a synchronous
// one for process 'exit' (uncaught errors). Processes are only ever stopped by their pid.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

interface Item {
  readonly label: string;
  readonly undo: () => Promise<void>;
  readonly undoSync: () => void;
}

export class Cleanup {
  readonly #items = new Map<number, Item>();
  #next = 0;

  /** Register an undo step; the returned function unregisters it (after a normal stop). */
  add(label: string, undo: () => Promise<void>, undoSync: () => void): () => void {
    const id = this.#next++;
    this.#items.set(id, { label, undo, undoSync });
    return () => {
      this.#items.delete(id);
    };
  }

  /** Undo everything still registered, newest first. Never throws. */
  async runAll(): Promise<void> {
    const items = [...this.#items.entries()].reverse();
    for (const [id, item] of items) {
      this.#items.delete(id);
      try {
        await item.undo();
      } catch (error) {
        console.error(`cleanup: ${item.label}: ${(error as Error).message}`);
      }
    }
  }

  /** Last resort from process.on('exit'): synchronous undo of what is left. */
  runSync(): void {
    const items = [...this.#items.entries()].reverse();
    for (const [id, item] of items) {
      this.#items.delete(id);
      try {
        item.undoSync();
      } catch {
        // Nothing more we can do while exiting.
      }
    }
  }

  get pending(): readonly string[] {
    return [...this.#items.values()].map((i) => i.label);
  }
}

/** Register a temp dir for removal. */
export function removeDirLater(cleanup: Cleanup, dir: string): () => void {
  const rm = (): void => rmSync(dir, { recursive: true, force: true });
  return cleanup.add(`remove ${dir}`, async () => rm(), rm);
}

/** Run a shell script synchronously (used by the peers' stop script from the exit path). */
export function runScriptSync(script: string, args: readonly string[], env?: NodeJS.ProcessEnv): void {
  spawnSync('bash', [script, ...args], { stdio: 'ignore', timeout: 15_000, env: env ?? process.env });
}
