// What applying a new config means, component by component: start, stop, restart (with the
// settings that changed) or keep. Pure: reload, `tpies --lint --diff` and `tpiesctl reload
// --dry-run` all print this same plan.
import type { Component, Config } from '../config/model.js';

export type PlanAction = 'start' | 'stop' | 'restart' | 'keep';

export interface PlanEntry {
  readonly tag: string;
  readonly action: PlanAction;
  /** Why: the changed settings for a restart, "new"/"removed"/"unchanged" otherwise. */
  readonly reasons: readonly string[];
}

export interface Plan {
  readonly entries: readonly PlanEntry[];
}

// Compare two configs by component tag. `previous` null means a first start.
export function planReload(previous: Config | null, next: Config): Plan {
  const entries: PlanEntry[] = [];
  const before = new Map((previous?.components ?? []).map((c) => [c.tag, c]));
  const after = new Set(next.components.map((c) => c.tag));
  for (const c of next.components) {
    const old = before.get(c.tag);
    if (!old || !previous) {
      entries.push({ tag: c.tag, action: 'start', reasons: ['new'] });
      continue;
    }
    const changed = changedSettings(fingerprint(previous, old), fingerprint(next, c));
    entries.push(changed.length > 0 ? { tag: c.tag, action: 'restart', reasons: changed } : { tag: c.tag, action: 'keep', reasons: ['unchanged'] });
  }
  for (const c of previous?.components ?? []) {
    if (!after.has(c.tag)) entries.push({ tag: c.tag, action: 'stop', reasons: ['removed'] });
  }
  return { entries };
}

// A plan as the lines `--diff` and `--dry-run` print: `restart web: command, env`.
export function formatPlan(plan: Plan): string {
  if (plan.entries.length === 0) return 'no components\n';
  return plan.entries.map((e) => `${e.action.padEnd(7)} ${e.tag}: ${e.reasons.join(', ')}\n`).join('');
}

/** A component's settings as JSON text per setting, plus all of it as one string. */
interface Fingerprint {
  readonly all: string;
  readonly settings: ReadonlyMap<string, string>;
}

// Configs and components are never mutated, so their fingerprints are computed once: the
// previous config's side of a reload costs nothing, and the global parts once per config.
const componentPrints = new WeakMap<Config, WeakMap<Component, Fingerprint>>();
const inheritedPrints = new WeakMap<Config, Map<string, string>>();

// Everything that decides how a component's processes run: its own statements plus what it
// inherits (global process settings and exit actions; a subordinate's master's settings).
function fingerprint(config: Config, c: Component): Fingerprint {
  let prints = componentPrints.get(config);
  if (!prints) componentPrints.set(config, (prints = new WeakMap()));
  let print = prints.get(c);
  if (print) return print;
  const settings = new Map<string, string>();
  for (const [key, value] of Object.entries(c)) {
    // argv is derived from command: a changed command is reported once, as "command".
    if (key === 'location' || key === 'statementLocations' || key === 'argv') continue;
    settings.set(key, JSON.stringify(normalize(value)));
  }
  for (const [key, value] of inherited(config)) settings.set(key, value);
  const master = c.tcpmuxMaster !== undefined ? config.components.find((m) => m.tag === c.tcpmuxMaster) : undefined;
  if (master) {
    settings.set('master settings', JSON.stringify(normalize({ user: master.user, group: master.group, umask: master.umask, limits: master.limits, env: master.env, chdir: master.chdir })));
  }
  print = { all: [...settings].map(([k, v]) => `${k}=${v}`).join('\n'), settings };
  prints.set(c, print);
  return print;
}

function inherited(config: Config): Map<string, string> {
  let settings = inheritedPrints.get(config);
  if (!settings) {
    settings = new Map([
      ['global settings', JSON.stringify(normalize(config.process))],
      ['global return-code', JSON.stringify(normalize(config.returnCodes))],
    ]);
    inheritedPrints.set(config, settings);
  }
  return settings;
}

function changedSettings(a: Fingerprint, b: Fingerprint): string[] {
  if (a.all === b.all) return [];
  const keys = [...new Set([...a.settings.keys(), ...b.settings.keys()])];
  return keys.filter((k) => a.settings.get(k) !== b.settings.get(k)).map(settingName);
}

// Model field names back to the config keywords an admin wrote.
function settingName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/-ms$/, '');
}

// Sets and Maps as sorted arrays, locations dropped: a JSON fingerprint of the value.
function normalize(value: unknown): unknown {
  if (value instanceof Set) return [...value].map(normalize).sort();
  if (value instanceof Map) return [...value.entries()].map(([k, v]) => [k, normalize(v)]);
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== 'location')
        .map(([k, v]) => [k, normalize(v)]),
    );
  }
  return value;
}
