// --watch: the daemon reloads by itself when its config file changes, including editors
// that save by rename and files deleted then recreated; a broken save changes nothing.
import assert from 'node:assert/strict';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { startTestDaemon, waitFor } from '../helpers/daemon.js';

const ONE = `component a { command "/bin/sleep 60"; }\n`;
const TWO = `${ONE}component b { command "/bin/sleep 60"; }\n`;
const THREE = `${TWO}component c { command "/bin/sleep 60"; }\n`;
const tags = (d: { daemon: { config: { components: readonly { tag: string }[] } } }): string[] => d.daemon.config.components.map((c) => c.tag);

test('an atomic rename save and a delete-then-recreate both reload', { timeout: 30_000 }, async (t) => {
  const d = await startTestDaemon(t, ONE, { watchConfig: { debounceMs: 50 } });
  const tmp = path.join(d.dir, 'tpies.conf.tmp');
  await writeFile(tmp, TWO);
  await rename(tmp, d.configFile);
  await waitFor(() => tags(d).join() === 'a,b', 10_000, 'reload after an atomic save');
  await rm(d.configFile);
  await new Promise((resolve) => setTimeout(resolve, 600));
  await writeFile(d.configFile, THREE);
  await waitFor(() => tags(d).join() === 'a,b,c', 10_000, 'reload after delete and recreate');
  assert.ok(d.logs.some((e) => e.msg === 'config changed on disk'));
});

test('a broken save changes nothing; fixing it reloads', { timeout: 30_000 }, async (t) => {
  const d = await startTestDaemon(t, ONE, { watchConfig: { debounceMs: 50 } });
  await writeFile(d.configFile, `${ONE}component b { comand x; }\n`);
  await waitFor(() => d.logs.some((e) => e.msg === 'config rejected'), 10_000, 'config rejected');
  assert.deepEqual(tags(d), ['a']);
  await writeFile(d.configFile, TWO);
  await waitFor(() => tags(d).join() === 'a,b', 10_000, 'reload after the fix');
});
