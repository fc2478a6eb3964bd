// The built Config model as plain JSON for golden files and comparisons: Sets become
// sorted arrays, Maps objects, locations "file:line:col" strings (or nothing at all).
import path from 'node:path';
import type { Location } from '../../src/config/ast.js';
import type { Config } from '../../src/config/model.js';

export interface SerializeOptions {
  /** `string` (default) keeps each location as "file:line:col"; `drop` removes them. */
  readonly locations?: 'string' | 'drop';
  /** `drop` removes `files`; a directory makes them relative to it (default: as they are). */
  readonly files?: 'drop' | { readonly relativeTo: string };
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isLocation(v: unknown): v is Location {
  if (typeof v !== 'object' || v === null || v instanceof Map || v instanceof Set || Array.isArray(v)) return false;
  const keys = Object.keys(v).sort();
  return keys.length === 3 && keys[0] === 'column' && keys[1] === 'file' && keys[2] === 'line';
}

// Deterministic JSON for sets of scalars: numbers numerically, everything else by text.
function compareJson(a: Json, b: Json): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const sa = JSON.stringify(a);
  const sb = JSON.stringify(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function convert(value: unknown, drop: boolean): Json | undefined {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (isLocation(value)) return drop ? undefined : `${value.file}:${value.line}:${value.column}`;
  if (value instanceof Set) {
    return [...value].map((v) => convert(v, drop) ?? null).sort(compareJson);
  }
  if (value instanceof Map) {
    const entries = [...value.entries()];
    // A map of nothing but locations (Component.statementLocations) is all location.
    if (drop && entries.length > 0 && entries.every(([, v]) => isLocation(v))) return undefined;
    const out: { [key: string]: Json } = {};
    for (const [k, v] of entries) {
      const converted = convert(v, drop);
      if (converted !== undefined) out[String(k)] = converted;
    }
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => convert(v, drop) ?? null);
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(value)) {
    const converted = convert(v, drop);
    if (converted !== undefined) out[k] = converted;
  }
  return out;
}

// A Config as JSON (see SerializeOptions); never mutates the config.
export function serializeModel(config: Config, options: SerializeOptions = {}): { [key: string]: Json } {
  const drop = options.locations === 'drop';
  const json = convert(config, drop);
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new TypeError('a Config serialises to an object');
  const { files, ...rest } = json;
  if (options.files === 'drop') return rest;
  if (options.files && Array.isArray(files)) {
    const base = options.files.relativeTo;
    return { files: files.map((f) => (typeof f === 'string' ? path.relative(base, f) : f)), ...rest };
  }
  return json;
}

// What a round trip must preserve: the model without locations and without `files`.
export function modelForComparison(config: Config): { [key: string]: Json } {
  return serializeModel(config, { locations: 'drop', files: 'drop' });
}
