// tpies' version, read once from package.json (the same module runs from src/ and dist/src/).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function readVersion(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tpies' && pkg.version) return pkg.version;
    } catch {
      // not here; keep looking upwards
    }
  }
  return 'unknown';
}

export const VERSION = readVersion();
