// `include-inetd` (config/index.ts): a relative name is taken from the directory of the file
// that holds the statement, not from the main file's directory or the cwd.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { formatDiagnostics, loadConfig } from '../../../src/config/index.js';

test('include-inetd in an included file resolves next to that file', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tpies-include-inetd-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'conf.d', 'inetd.d'), { recursive: true });
  await writeFile(path.join(root, 'main.conf'), '#include "conf.d/services.conf"\ninclude-inetd main-inetd.conf;\n');
  await writeFile(path.join(root, 'main-inetd.conf'), '127.0.0.1:7001 stream tcp nowait nobody /bin/cat cat\n');
  await writeFile(path.join(root, 'conf.d', 'services.conf'), 'include-inetd inetd.d;\n');
  await writeFile(path.join(root, 'conf.d', 'inetd.d', 'a'), '127.0.0.1:7002 stream tcp nowait nobody /bin/cat cat\n');
  // A file of the same name next to the main file must not be the one read.
  await mkdir(path.join(root, 'inetd.d'));
  await writeFile(path.join(root, 'inetd.d', 'a'), '127.0.0.1:7003 stream tcp nowait nobody /bin/cat cat\n');

  const result = await loadConfig(path.join(root, 'main.conf'));
  assert.ok(result.config, formatDiagnostics(result.diagnostics, result.sources));
  assert.deepEqual(result.config.components.map((c) => c.tag), ['127.0.0.1:7002', '127.0.0.1:7001']);
});

test('a missing include-inetd target is a read error at its name', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tpies-include-inetd-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await writeFile(path.join(root, 'main.conf'), 'include-inetd nope.conf;\n');
  const result = await loadConfig(path.join(root, 'main.conf'));
  assert.equal(result.config, null);
  assert.deepEqual(result.diagnostics.map((d) => [d.rule, d.location?.line, d.location?.column]), [['read', 1, 15]]);
});
