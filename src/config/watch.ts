// Watches the config file and its includes; the only importer of chokidar (ARCHITECTURE
// rule 2). Editors save by rename (B10), and chokidar 5 loses a watched *file* that is deleted
// and recreated later than its atomic window (reference/node-on-this-machine.md §6, fix A):
// it re-adds a deleted file only while it watches a single directory, so main + conf.d fail.
// So we watch the *directories* that hold the files, without descending, and an `ignored`
// filter lets only the wanted files through: a recreated or newly appearing file then shows
// up as a new directory entry (`add`). Events are debounced across all files into one
// callback; the daemon re-reads the whole tree and calls update() with the new file set.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log/logger.js';

export interface WatchConfigOptions {
  /** Quiet time after the last event before `onChange` runs. Default 250 ms. */
  readonly debounceMs?: number;
  readonly log?: Logger;
}

export interface ConfigWatcher {
  /**
   * Replace the watched set (main file plus includes, as the last reload found them). The
   * new set filters events at once; the promise resolves when newly needed directories are
   * being watched. It never rejects, so callers may ignore it.
   */
  update(files: readonly string[]): Promise<void>;
  /** Stop watching; no `onChange` call happens after this is called. */
  close(): Promise<void>;
}

export const DEFAULT_WATCH_DEBOUNCE_MS = 250;

// chokidar 5 cannot wait for a directory that does not exist (it waits for missing *files*
// only), so a missing directory is polled for at this interval.
const MISSING_DIR_POLL_MS = 500;

/** One watched directory: a chokidar watcher on it, or a poll while it does not exist. */
interface Slot {
  watcher?: FSWatcher;
  poll?: NodeJS.Timeout;
}

// Resolves once chokidar has scanned the directories, so a write right after it is seen.
export async function watchConfig(
  files: readonly string[],
  onChange: (changed: string[]) => void,
  options: WatchConfigOptions = {},
): Promise<ConfigWatcher> {
  const debounceMs = options.debounceMs ?? DEFAULT_WATCH_DEBOUNCE_MS;
  if (!Number.isFinite(debounceMs) || debounceMs < 0) {
    throw new TypeError(`Expected the \`debounceMs\` option to be a non-negative number, got ${String(debounceMs)}`);
  }
  const log = options.log;
  // Mutated in place by update(): the `ignored` filters read `wanted` on every call.
  const wanted = new Set<string>();
  const dirs = new Set<string>();
  const pending = new Set<string>();
  // One chokidar instance per directory, so update() can drop a directory cleanly: chokidar's
  // own unwatch() of a directory leaves its files' watchers open and ignores everything below
  // it, which would also silence a nested directory that is still wanted (conf.d under /etc).
  const slots = new Map<string, Slot>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;
  let signalClosed!: () => void;
  const closedSignal = new Promise<void>((resolve) => (signalClosed = resolve));

  const setWanted = (list: readonly string[]): void => {
    wanted.clear();
    dirs.clear();
    for (const f of list) {
      const abs = path.resolve(f);
      wanted.add(abs);
      dirs.add(path.dirname(abs));
    }
  };
  setWanted(files);

  const fire = (): void => {
    timer = undefined;
    if (closed) return;
    // A file dropped from the set by an update() since its event is no longer of interest.
    const changed = [...pending].filter((f) => wanted.has(f)).sort();
    pending.clear();
    if (changed.length === 0) return;
    log?.debug({ files: changed }, 'config files changed');
    try {
      onChange(changed);
    } catch (err) {
      log?.error({ err }, 'config change handler failed');
    }
  };

  const changed = (abs: string): void => {
    pending.add(abs);
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  };

  const onEvent = (event: string, p: string): void => {
    if (closed) return;
    if (event !== 'add' && event !== 'change' && event !== 'unlink') return;
    const abs = path.resolve(p);
    if (!wanted.has(abs)) return;
    log?.trace({ event, file: abs }, 'config file event');
    changed(abs);
  };

  // chokidar's add() clears its `closed` flag, and its own async work still in flight can call
  // add() after close(): a watcher closed while its directory is being removed can come back
  // to life, waiting on a fresh fs.watch of the parent that nothing ever closes, and the
  // process never exits (seen on this machine when the watcher was closed from its own
  // `unlinkDir` handler). So a watcher we close can never add again.
  // Work started from a chokidar callback: nobody awaits it, so its failure is logged here.
  const background = (work: Promise<void>, dir: string): void => {
    work.catch((err: unknown) => log?.warn({ err, dir }, 'config watcher failed'));
  };

  const closeWatcher = (w: FSWatcher, dir: string): Promise<void> => {
    w.add = () => w;
    return w.close().catch((err: unknown) => log?.warn({ err, dir }, 'config watcher close failed'));
  };

  const stopDir = (dir: string): Promise<void> => {
    const slot = slots.get(dir);
    slots.delete(dir);
    if (slot?.poll !== undefined) clearTimeout(slot.poll);
    return slot?.watcher ? closeWatcher(slot.watcher, dir) : Promise.resolve();
  };

  // Which directory is at `dir` now (device and inode), or null when none is.
  const dirIdentity = (dir: string): Promise<string | null> =>
    stat(dir).then(
      (st) => (st.isDirectory() ? `${st.dev}:${st.ino}` : null),
      () => null,
    );

  // Watch `dir`, or poll until it exists. `fresh`: the directory is new or came back, so the
  // wanted files already in it when the scan runs are reported (`add`) rather than skipped.
  const startDir = async (dir: string, fresh: boolean): Promise<void> => {
    const slot: Slot = {};
    slots.set(dir, slot);
    const current = (): boolean => !closed && slots.get(dir) === slot;

    const identity = await dirIdentity(dir);
    if (identity === null) {
      if (!current()) return;
      log?.debug({ dir }, 'config directory missing; waiting for it');
      const check = async (): Promise<void> => {
        const exists = (await dirIdentity(dir)) !== null;
        if (!current()) return;
        if (exists) background(startDir(dir, true), dir);
        else slot.poll = setTimeout(() => void check(), MISSING_DIR_POLL_MS);
      };
      slot.poll = setTimeout(() => void check(), MISSING_DIR_POLL_MS);
      return;
    }
    if (!current()) return;

    const w = watch(dir, {
      ignoreInitial: !fresh,
      // Keep the directory itself and the wanted files in it; ignore everything else, so
      // unrelated files get no watcher and subdirectories are not descended into. Without
      // stats chokidar asks again with them, so "don't know yet" must mean "keep".
      ignored: (p: string, stats?: { isFile(): boolean; isDirectory(): boolean }) => {
        if (stats === undefined) return false;
        const abs = path.resolve(p);
        return stats.isDirectory() ? abs !== dir : !wanted.has(abs);
      },
    });
    slot.watcher = w;
    w.on('all', onEvent);
    w.on('error', (err) => {
      if (!closed) log?.warn({ err, dir }, 'config watcher error');
    });

    // chokidar stops at a watched directory that is removed (rm -r conf.d, or a directory
    // renamed over it) and never sees it again, and its own `unlinkDir` for it is not
    // reliable (a removal soon after another event is missed). So on any activity, check that
    // the same directory is still there; if not, start over, which polls until it is back.
    let checking = false;
    let again = false;
    const checkStillThere = async (): Promise<void> => {
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      try {
        do {
          again = false;
          const now = await dirIdentity(dir);
          if (!current()) return;
          if (now === identity) continue;
          log?.debug({ dir }, 'config directory removed or replaced');
          // Its files' own unlink events may still be held back by chokidar's atomic delay
          // and would die with this watcher, so report them here.
          for (const f of wanted) if (path.dirname(f) === dir) changed(f);
          background(closeWatcher(w, dir), dir);
          background(startDir(dir, true), dir);
          return;
        } while (again);
      } finally {
        checking = false;
      }
    };
    w.on('raw', () => void checkStillThere());
    w.on('unlinkDir', () => void checkStillThere());

    // A watcher closed before its scan finishes never says ready.
    await Promise.race([new Promise<void>((resolve) => w.once('ready', () => resolve())), closedSignal]);
    // Removed or replaced between the stat and the scan.
    await checkStillThere();
  };

  await Promise.all([...dirs].map((d) => startDir(d, false)));

  return {
    async update(list) {
      if (closed) return;
      setWanted(list);
      const gone = [...slots.keys()].filter((d) => !dirs.has(d));
      const added = [...dirs].filter((d) => !slots.has(d));
      // A newly wanted file in a directory already watched needs nothing more: chokidar never
      // tracked it, so the next event in that directory re-reads it and reports it as `add`.
      log?.debug({ files: [...wanted], dirs: [...dirs] }, 'config watch set updated');
      await Promise.all([...gone.map(stopDir), ...added.map((d) => startDir(d, false))]);
    },
    close() {
      if (closing) return closing;
      closed = true;
      signalClosed();
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      pending.clear();
      closing = Promise.all([...slots.keys()].map(stopDir)).then(() => undefined);
      return closing;
    },
  };
}
