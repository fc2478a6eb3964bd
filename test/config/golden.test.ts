// The config pipeline's golden corpus (loadConfig: load → build → checks): each
// golden/ok/NAME.conf must build to NAME.model.json (warnings, if any, in NAME.warn.txt)
// and each golden/bad/NAME.conf must be refused with exactly NAME.err.txt, and with the
// rules its "# rules:" header names. UPDATE_GOLDEN=1 rewrites the expectations.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MAX_ACL_DEPTH } from '../../src/acl/acl.js';
import { formatDiagnostics, loadConfig } from '../../src/config/index.js';
import { serializeModel } from '../helpers/model-json.js';
import { goldenCorpus } from '../helpers/golden.js';

const GOLDEN = fileURLToPath(new URL('./golden/', import.meta.url));
// Named ports resolve against this file, not the host's /etc/services.
const SERVICES = 'services';

const { confFiles, golden } = goldenCorpus(GOLDEN);

// File names in diagnostics are relative to golden/, so the expectations do not depend on
// where the repository lives or where the test runner was started.
before(() => process.chdir(GOLDEN));

function load(relative: string) {
  return loadConfig(relative, { servicesFile: SERVICES });
}

// The rule ids a bad file declares in its "# rules: a, b" header.
function declaredRules(relative: string): string[] {
  const header = /^# rules: (.+)$/m.exec(readFileSync(join(GOLDEN, relative), 'utf8'));
  assert.ok(header, `${relative} needs a "# rules: RULE, …" header naming what it tests`);
  return header[1]!.split(',').map((r) => r.trim()).sort();
}

describe('config golden corpus: ok', () => {
  for (const name of confFiles('ok')) {
    const base = name.slice(0, -'.conf'.length);
    test(name, async () => {
      const result = await load(`ok/${name}`);
      const errors = result.diagnostics.filter((d) => d.severity === 'error');
      assert.deepEqual(errors, [], formatDiagnostics(errors, result.sources));
      assert.ok(result.config, 'a config without errors must be returned');
      const model = serializeModel(result.config, { files: { relativeTo: GOLDEN } });
      golden(`ok/${base}.model.json`, `${JSON.stringify(model, null, 2)}\n`);
      golden(`ok/${base}.warn.txt`, formatDiagnostics(result.diagnostics, result.sources));
    });
  }
});

describe('config golden corpus: bad', () => {
  for (const name of confFiles('bad')) {
    const base = name.slice(0, -'.conf'.length);
    test(name, async () => {
      const relative = `bad/${name}`;
      const result = await load(relative);
      assert.equal(result.config, null, 'a config with errors must not be returned');
      const errors = result.diagnostics.filter((d) => d.severity === 'error');
      assert.ok(errors.length > 0);
      for (const d of errors) assert.ok(d.location, `every error is located: ${d.rule}: ${d.message}`);
      assert.deepEqual([...new Set(errors.map((d) => d.rule))].sort(), declaredRules(relative), formatDiagnostics(result.diagnostics, result.sources));
      golden(`bad/${base}.err.txt`, formatDiagnostics(result.diagnostics, result.sources));
    });
  }
});

// The issue's "done when": three different mistakes, all three reported, each located.
test('three-mistakes.conf reports three different errors, each with file:line:col', async () => {
  const result = await load('bad/three-mistakes.conf');
  assert.equal(result.config, null);
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  assert.equal(errors.length, 3, formatDiagnostics(result.diagnostics, result.sources));
  assert.equal(new Set(errors.map((d) => d.rule)).size, 3, 'three different kinds of mistake');
  assert.equal(new Set(errors.map((d) => d.location?.line)).size, 3, 'on three different lines');
  const text = formatDiagnostics(result.diagnostics, result.sources);
  const heads = text.split('\n').filter((l) => /^bad\/three-mistakes\.conf:\d+:\d+: error: /.test(l));
  assert.equal(heads.length, 3, text);
  assert.match(text, /\n3 errors\n$/);
});

// ---- regressions: cases that once went wrong, each a plain test now ----

async function loadText(text: string) {
  const dir = mkdtempSync(join(tmpdir(), 'tpies-golden-'));
  try {
    writeFileSync(join(dir, 'x.conf'), text);
    return await loadConfig(join(dir, 'x.conf'), { servicesFile: SERVICES });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const inetd = (tag: string, socket: string): string => `component ${tag} {\n    mode inetd;\n    socket "${socket}";\n    command /bin/cat;\n}\n`;

describe('regressions', () => {
  // Node listens on "::" dual-stack (IPV6_V6ONLY off, the Linux default), so the second
  // listener fails with EADDRINUSE at startup although --lint said the config was fine.
  test('socket-conflict: inet6 [::] and inet 0.0.0.0 on one port conflict', async () => {
    const result = await loadText(inetd('a', 'inet6://[::]:7000') + inetd('b', 'inet://0.0.0.0:7000'));
    assert.equal(result.config, null);
    assert.deepEqual(result.diagnostics.map((d) => d.rule), ['socket-conflict']);
  });

  test('socket-conflict: inet6 [::] conflicts with any IPv4 address on its port, not with IPv6 ::1 under 0.0.0.0', async () => {
    const both = await loadText(inetd('a', 'inet://127.0.0.1:7000') + inetd('b', 'inet6://[::]:7000'));
    assert.deepEqual(both.diagnostics.map((d) => d.rule), ['socket-conflict']);
    const apart = await loadText(inetd('a', 'inet://0.0.0.0:7000') + inetd('b', 'inet6://[::1]:7000'));
    assert.deepEqual(apart.diagnostics, []);
  });

  test('socket-conflict: the control socket and a component on one socket conflict', async () => {
    const result = await loadText(`control {\n    socket inet://127.0.0.1:7000;\n}\n${inetd('a', 'inet://127.0.0.1:7000')}`);
    assert.equal(result.config, null);
    assert.deepEqual(result.diagnostics.map((d) => d.rule), ['socket-conflict']);
    assert.equal(result.diagnostics[0]?.location?.line, 6, 'located at the component\'s socket');
    assert.equal(result.diagnostics[0]?.notes[0]?.location?.line, 2, 'with a note at the control socket');
  });

  // src/acl/acl.ts says "Config checks reject undefined names and cycles"; they do now.
  test('defacls that refer to each other in a cycle are an error', async () => {
    const result = await loadText('defacl a {\n    allow acl b;\n}\ndefacl b {\n    allow acl a;\n}\ncomponent x {\n    command /bin/true;\n    acl a;\n}\n');
    assert.equal(result.config, null);
    assert.ok(result.diagnostics.some((d) => d.severity === 'error' && /cycle/.test(d.message)), JSON.stringify(result.diagnostics));
    assert.deepEqual(result.diagnostics.map((d) => [d.rule, d.location?.line]), [['acl-cycle', 5]], 'one error, at the entry that closes the cycle');
  });

  const chain = (length: number): string =>
    Array.from({ length }, (_, i) => `defacl d${i} {\n    allow ${i + 1 < length ? `acl d${i + 1}` : 'any'};\n}\n`).join('');

  test(`defacls nested up to MAX_ACL_DEPTH (${MAX_ACL_DEPTH}) are fine, one more is an error`, async () => {
    assert.deepEqual((await loadText(chain(MAX_ACL_DEPTH))).diagnostics, []);
    const result = await loadText(chain(MAX_ACL_DEPTH + 5));
    assert.equal(result.config, null);
    // Reported once, where the chain passes the limit: d4 -> d5 … d36 is 33 deep.
    assert.deepEqual(result.diagnostics.map((d) => [d.rule, d.location?.line]), [['acl-cycle', 14]], formatDiagnostics(result.diagnostics, result.sources));
    assert.match(result.diagnostics[0]!.message, /defacl "d4": .*33 defacls deep, more than the 32/);
  });

  // "::1:7000" is itself an IPv6 address; splitting at the last colon is a guess, and the
  // parser's own message says IPv6 addresses go in brackets.
  test('inet6 URL with an unbracketed address is refused', async () => {
    const result = await loadText(inetd('a', 'inet6://::1:7000'));
    assert.equal(result.config, null);
    assert.match(result.diagnostics[0]?.message ?? '', /brackets/);
  });

  // MODES["constructor"] is Object.prototype.constructor, a truthy non-mode.
  test('names that only Object.prototype has are no mode and no exit code', async () => {
    const result = await loadText('component a {\n    mode constructor;\n    command /bin/true;\n    return-code (toString, __proto__) {\n        action disable;\n    }\n}\n');
    assert.equal(result.config, null);
    assert.deepEqual(result.diagnostics.map((d) => [d.rule, d.location?.line]), [['bad-value', 2], ['bad-value', 4], ['bad-value', 4]]);
  });

  test('respawn limit 0 turns the throttle off and is accepted', async () => {
    const result = await loadText('respawn {\n    limit 0;\n}\n');
    assert.deepEqual(result.diagnostics, []);
    assert.equal(result.config?.respawn.limit, 0);
  });

  test('limits with only the ignored L letter are no limits at all', async () => {
    const result = await loadText('limits "L5";\ncomponent a {\n    command /bin/true;\n    limits "L1";\n}\n');
    assert.deepEqual(result.diagnostics, []);
    assert.equal(result.config?.process.limits, undefined);
    assert.equal(result.config?.components[0]?.limits, undefined);
  });
});
