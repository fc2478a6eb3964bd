// The reload plan: which components start, stop, restart (and why) or keep, between two
// configs; the same plan `tpiesctl reload --dry-run` and `tpies --lint --diff` print.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../../src/config/build.js';
import { Diagnostics } from '../../../src/config/diagnostics.js';
import type { Config } from '../../../src/config/model.js';
import { parseConfigText } from '../../../src/config/parse.js';
import { formatPlan, planReload } from '../../../src/supervisor/plan.js';

function config(text: string): Config {
  const parsed = parseConfigText(text, 'plan.conf');
  assert.ok(parsed.file, JSON.stringify(parsed.diagnostics));
  const diags = new Diagnostics();
  const built = buildConfig(parsed.file.body, { diags, services: new Map() });
  assert.deepEqual(diags.list, []);
  return built;
}

const actions = (plan: ReturnType<typeof planReload>): Record<string, string> => Object.fromEntries(plan.entries.map((e) => [e.tag, `${e.action}: ${e.reasons.join(', ')}`]));

test('a first start starts everything', () => {
  assert.deepEqual(actions(planReload(null, config('component a { command /bin/true; }'))), { a: 'start: new' });
});

test('keep, restart with the changed settings, stop, start', () => {
  const before = config(`
component keep { command "/bin/sleep 1"; }
component change { command "/bin/sleep 1"; umask 022; }
component gone { command /bin/true; }`);
  const after = config(`
component keep { command "/bin/sleep 1"; }
component change { command "/bin/sleep 2"; umask 027; }
component fresh { command /bin/true; }`);
  assert.deepEqual(actions(planReload(before, after)), {
    keep: 'keep: unchanged',
    change: 'restart: umask, command',
    fresh: 'start: new',
    gone: 'stop: removed',
  });
});

test('a global setting restarts every component, naming it', () => {
  const before = config('umask 022; component a { command /bin/true; } component b { command /bin/true; }');
  const after = config('umask 027; component a { command /bin/true; } component b { command /bin/true; }');
  assert.deepEqual(actions(planReload(before, after)), { a: 'restart: global settings', b: 'restart: global settings' });
});

test("a TCPMUX master's process settings restart its subordinates", () => {
  const text = (umask: string): string => `
component mux { socket inet://127.0.0.1:0; service tcpmux; flags internal; umask ${umask}; }
component echo { tcpmux-master mux; service echo; flags tcpmuxplus; command /bin/cat; }`;
  const plan = actions(planReload(config(text('022')), config(text('027'))));
  assert.equal(plan.echo, 'restart: master settings');
  assert.equal(plan.mux, 'restart: umask');
});

test('the same text twice keeps everything; the plan prints one line per component', () => {
  const text = 'component a { command /bin/true; } component b { command /bin/true; }';
  const plan = planReload(config(text), config(text));
  assert.equal(formatPlan(plan), 'keep    a: unchanged\nkeep    b: unchanged\n');
});
