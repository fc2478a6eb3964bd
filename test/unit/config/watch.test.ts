// config/watch.ts against real files in a temp dir: the ways editors save (in place, atomic
// rename, vim's backup dance), delete and recreate later than chokidar's atomic window, an
// include (or its directory) that appears later, an include directory removed and restored,
// unrelated neighbours, bursts, update(), close(), and no fs.watch handle left behind.
// Every wait polls with a deadline; the only fixed pauses are short quiet periods that prove
// nothing more arrives, and the 500 ms gap the delete-and-recreate case is about. Each test
// has a timeout so that a watcher that never fires cannot hang the suite.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { type ConfigWatcher, type WatchConfigOptions, watchConfig } from '../../../src/config/watch.js';

const DEBOUNCE_MS = 100;
// Longer than the debounce plus chokidar's 100 ms atomic window: anything pending has fired.
const QUIET_MS = 400;
const LIMIT = { timeout: 20_000 };

// Cleanups run last-registered first, so a watcher is closed before its temp dir goes.
const cleanups = new WeakMap<TestContext, Array<() => Promise<unknown>>>();
function defer(t: TestContext, fn: () => Promise<unknown>): void {
  let list = cleanups.get(t);
  if (!list) {
    const fns: Array<() => Promise<unknown>> = [];
    cleanups.set(t, (list = fns));
    t.after(async () => {
      for (const f of fns.reverse()) await f();
    });
  }
  list.push(fn);
}

async function tempDir(t: TestContext): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tpies-watch-'));
  defer(t, () => rm(root, { recursive: true, force: true }));
  return root;
}

// Open fs.watch handles in this process (what would keep the daemon from exiting).
function fsWatches(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
}

interface Harness {
  readonly watcher: ConfigWatcher;
  /** Every onChange call, in order. */
  readonly calls: string[][];
  /** Wait until there are `n` calls (5 s deadline), then return the n-th. */
  call(n: number): Promise<string[]>;
  /** Assert that no call beyond the first `n` arrives within QUIET_MS. */
  quiet(n: number): Promise<void>;
}

async function start(t: TestContext, files: readonly string[], options: WatchConfigOptions = {}): Promise<Harness> {
  const calls: string[][] = [];
  const watcher = await watchConfig(files, (changed) => calls.push(changed), { debounceMs: DEBOUNCE_MS, ...options });
  defer(t, () => watcher.close());
  return {
    watcher,
    calls,
    async call(n) {
      await waitFor(() => calls.length >= n, 5000, `onChange call #${n} (have ${calls.length})`);
      assert.equal(calls.length, n, `expected exactly ${n} calls, got ${JSON.stringify(calls)}`);
      return calls[n - 1] ?? [];
    },
    async quiet(n) {
      await sleep(QUIET_MS);
      assert.equal(calls.length, n, `expected no more than ${n} calls, got ${JSON.stringify(calls)}`);
    },
  };
}

// Poll `predicate` every 10 ms until it holds; fail after `timeoutMs`.
async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

test('an in-place write is reported', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'tpies.conf');
  await writeFile(main, 'pidfile /a;\n');
  const h = await start(t, [main]);

  await writeFile(main, 'pidfile /b;\n');
  assert.deepEqual(await h.call(1), [main]);
  await h.quiet(1);
});

test('an atomic save (write a temp file, rename it over) is one change, and the file stays watched', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'tpies.conf');
  await writeFile(main, 'pidfile /a;\n');
  const h = await start(t, [main]);

  const tmp = path.join(dir, '.tpies.conf.tmp-1234');
  await writeFile(tmp, 'pidfile /b;\n');
  await rename(tmp, main);
  assert.deepEqual(await h.call(1), [main]);

  await writeFile(main, 'pidfile /c;\n');
  assert.deepEqual(await h.call(2), [main]);
  await h.quiet(2);
});

test('a vim-style save (rename to a backup, write anew, delete the backup) is one change', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'tpies.conf');
  await writeFile(main, 'pidfile /a;\n');
  const h = await start(t, [main]);

  const backup = `${main}~`;
  await rename(main, backup);
  await writeFile(main, 'pidfile /b;\n');
  await unlink(backup);
  assert.deepEqual(await h.call(1), [main]);

  await writeFile(main, 'pidfile /c;\n');
  assert.deepEqual(await h.call(2), [main]);
  await h.quiet(2);
});

// The chokidar 5 pitfall: a directly watched file that is deleted and recreated later than the
// atomic window is reported as unlinked and then never again. chokidar re-adds a deleted file
// only while it watches a single directory, so the files here span two, as main + conf.d do.
test('delete, recreate 500 ms later, then write: all three are reported (files in two directories)', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'tpies.conf');
  const inc = path.join(dir, 'conf.d', 'web.conf');
  await writeFile(main, '#include conf.d/web.conf\n');
  await mkdir(path.dirname(inc));
  await writeFile(inc, 'pidfile /a;\n');
  const h = await start(t, [main, inc]);

  let n = 0;
  for (const file of [main, inc]) {
    const deletedAt = Date.now();
    await unlink(file);
    assert.deepEqual(await h.call(++n), [file]);

    await sleep(Math.max(0, deletedAt + 500 - Date.now()));
    await writeFile(file, 'pidfile /b;\n');
    assert.deepEqual(await h.call(++n), [file]);

    await writeFile(file, 'pidfile /c;\n');
    assert.deepEqual(await h.call(++n), [file]);
  }
  await h.quiet(n);
});

test('an include that does not exist yet is reported when it appears, and then watched', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'tpies.conf');
  const inc = path.join(dir, 'extra.conf');
  const nested = path.join(dir, 'conf.d', 'web.conf');
  await writeFile(main, '#include extra.conf\n#include conf.d/web.conf\n');
  await mkdir(path.dirname(nested));
  const h = await start(t, [main, inc, nested]);

  await writeFile(inc, 'pidfile /a;\n');
  assert.deepEqual(await h.call(1), [inc]);
  await writeFile(inc, 'pidfile /b;\n');
  assert.deepEqual(await h.call(2), [inc]);

  await writeFile(nested, 'pidfile /c;\n');
  assert.deepEqual(await h.call(3), [nested]);
  await writeFile(nested, 'pidfile /d;\n');
  assert.deepEqual(await h.call(4), [nested]);
  await h.quiet(4);
});

// chokidar 5 waits for a missing file but not for a missing directory. Nothing else watches
// the include's parent here, so only watch.ts's own wait can see it appear.
test('an include whose directories do not exist yet is reported once they appear', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'etc', 'tpies.conf');
  const inc = path.join(dir, 'opt', 'later.d', 'x.conf');
  await mkdir(path.dirname(main));
  await writeFile(main, `#include ${inc}\n`);
  const h = await start(t, [main, inc]);

  await mkdir(path.dirname(inc), { recursive: true });
  await writeFile(inc, 'pidfile /a;\n');
  assert.deepEqual(await h.call(1), [inc]);
  await writeFile(inc, 'pidfile /b;\n');
  assert.deepEqual(await h.call(2), [inc]);
  await h.quiet(2);
});

test('an include directory removed and recreated is watched again', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'etc', 'tpies.conf');
  const inc = path.join(dir, 'opt', 'conf.d', 'web.conf');
  await mkdir(path.dirname(main));
  await writeFile(main, `#include ${inc}\n`);
  await mkdir(path.dirname(inc), { recursive: true });
  await writeFile(inc, 'pidfile /a;\n');
  const h = await start(t, [main, inc]);

  let n = 0;
  // Once restored with the file in it, once recreated empty and the file written after.
  for (const restore of [true, false]) {
    await rm(path.dirname(path.dirname(inc)), { recursive: true });
    assert.deepEqual(await h.call(++n), [inc]);
    if (restore) {
      const staged = path.join(dir, 'staged');
      await mkdir(path.join(staged, 'conf.d'), { recursive: true });
      await writeFile(path.join(staged, 'conf.d', 'web.conf'), 'pidfile /b;\n');
      await rename(staged, path.dirname(path.dirname(inc)));
    } else {
      await mkdir(path.dirname(inc), { recursive: true });
      await writeFile(inc, 'pidfile /b;\n');
    }
    assert.deepEqual(await h.call(++n), [inc]);
    await writeFile(inc, 'pidfile /c;\n');
    assert.deepEqual(await h.call(++n), [inc]);
  }
  await writeFile(main, 'pidfile /d;\n');
  assert.deepEqual(await h.call(++n), [main]);
  await h.quiet(n);
});

// chokidar revives a watcher closed while its directory is being removed (add() after close()
// clears `closed`), leaving an fs.watch open that keeps the process alive.
test('close() leaves no fs.watch handle open, even after the directories were removed', LIMIT, async (t) => {
  for (const waitForUnlink of [true, false]) {
    const before = fsWatches();
    const dir = await tempDir(t);
    const main = path.join(dir, 'tpies.conf');
    const inc = path.join(dir, 'conf.d', 'web.conf');
    await mkdir(path.dirname(inc));
    await writeFile(main, 'x\n');
    await writeFile(inc, 'x\n');
    const calls: string[][] = [];
    const watcher = await watchConfig([main, inc], (changed) => calls.push(changed), { debounceMs: DEBOUNCE_MS });
    defer(t, () => watcher.close());
    assert.ok(fsWatches() > before);

    await rm(dir, { recursive: true });
    if (waitForUnlink) {
      await waitFor(() => calls.length > 0, 5000, 'the unlink callback');
      await waitFor(() => new Set(calls.flat()).size === 2, 5000, 'both files reported');
      assert.deepEqual([...new Set(calls.flat())].sort(), [inc, main].sort());
    }
    await watcher.close();
    await waitFor(() => fsWatches() === before, 2000, `fs.watch handles back to ${before} (have ${fsWatches()})`);
  }
});

test('unrelated files and subdirectories in a watched directory stay silent', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'tpies.conf');
  const other = path.join(dir, 'other.conf');
  await writeFile(main, 'pidfile /a;\n');
  await writeFile(other, 'x\n');
  const h = await start(t, [main]);

  await writeFile(other, 'y\n');
  await writeFile(path.join(dir, 'new.conf'), 'z\n');
  await rename(path.join(dir, 'new.conf'), path.join(dir, 'renamed.conf'));
  await unlink(other);
  await mkdir(path.join(dir, 'sub'));
  await writeFile(path.join(dir, 'sub', 'tpies.conf'), 'same name, other dir\n');
  await h.quiet(0);

  // The watcher is alive: a wanted file still gets through, alone.
  await writeFile(main, 'pidfile /b;\n');
  assert.deepEqual(await h.call(1), [main]);
  await h.quiet(1);
});

test('a burst of writes across files is one callback listing each file once', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'tpies.conf');
  const inc = path.join(dir, 'extra.conf');
  await writeFile(main, 'pidfile /a;\n');
  await writeFile(inc, 'x\n');
  const h = await start(t, [main, inc], { debounceMs: 250 });

  // 10 writes 20 ms apart: each lands inside the previous one's 250 ms debounce window.
  for (let i = 0; i < 10; i++) {
    await writeFile(i % 2 === 0 ? main : inc, `pidfile /${i};\n`);
    await sleep(20);
  }
  assert.deepEqual(await h.call(1), [inc, main].sort());
  await h.quiet(1);
});

test('update() switches the watched set', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'tpies.conf');
  const oldInc = path.join(dir, 'old.conf');
  const sibling = path.join(dir, 'sibling.conf');
  const nested = path.join(dir, 'conf.d', 'new.conf');
  await writeFile(main, 'x\n');
  await writeFile(oldInc, 'x\n');
  await writeFile(sibling, 'x\n');
  await mkdir(path.dirname(nested));
  await writeFile(nested, 'x\n');
  const h = await start(t, [main, oldInc]);

  // Same directory, one file dropped and one existing file added; plus a new directory.
  await h.watcher.update([main, sibling, nested]);
  await writeFile(oldInc, 'y\n');
  await writeFile(sibling, 'y\n');
  assert.deepEqual(await h.call(1), [sibling]);
  await writeFile(nested, 'y\n');
  assert.deepEqual(await h.call(2), [nested]);
  await writeFile(sibling, 'z\n');
  assert.deepEqual(await h.call(3), [sibling]);

  // Drop the parent directory; the nested one it contains keeps working on its own.
  await h.watcher.update([nested]);
  await writeFile(main, 'y\n');
  await writeFile(sibling, 'w\n');
  await writeFile(nested, 'z\n');
  assert.deepEqual(await h.call(4), [nested]);
  await h.quiet(4);
});

test('close() stops callbacks, including one already pending', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'tpies.conf');
  await writeFile(main, 'x\n');
  const { log, entries } = createMemoryLogger('trace');
  const h = await start(t, [main], { debounceMs: 300, log });

  await writeFile(main, 'y\n');
  // The event is in and its callback pending: close inside the debounce window.
  await waitFor(() => entries.some((e) => e.msg === 'config file event'), 5000, 'the change event');
  await h.watcher.close();
  await h.watcher.close(); // idempotent
  await writeFile(main, 'z\n');
  await unlink(main);
  await h.watcher.update([main]); // a no-op once closed
  await writeFile(main, 'again\n');
  await h.quiet(0);
});

test('a throwing onChange is logged and the watcher keeps going', LIMIT, async (t) => {
  const dir = await tempDir(t);
  const main = path.join(dir, 'tpies.conf');
  await writeFile(main, 'x\n');
  const { log, entries } = createMemoryLogger('error');
  let calls = 0;
  const watcher = await watchConfig(
    [main],
    () => {
      calls++;
      throw new Error('boom');
    },
    { debounceMs: DEBOUNCE_MS, log },
  );
  defer(t, () => watcher.close());

  await writeFile(main, 'y\n');
  await waitFor(() => calls === 1, 5000, 'first call');
  await writeFile(main, 'z\n');
  await waitFor(() => calls === 2, 5000, 'second call');
  assert.deepEqual(
    entries.map((e) => e.msg),
    ['config change handler failed', 'config change handler failed'],
  );
});
