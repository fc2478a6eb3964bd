// `tpies`: argv → lint, dump or run the supervisor. Thin: the work is in config/ and daemon.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { EXIT, PiesError } from '../errors.js';
import { formatDiagnostics, loadConfig, type LoadConfigResult } from '../config/index.js';
import { dumpConfig } from '../config/dump.js';
import { type TpiesOptions, TPIES_USAGE, parseTpiesArgs } from './args.js';
import type { CliIo } from './io.js';

// Run tpies with `argv` (no node/script names); resolves to the process exit code.
export async function runTpies(argv: readonly string[], io: CliIo): Promise<number> {
  let options: TpiesOptions;
  try {
    options = parseTpiesArgs(argv);
  } catch (error) {
    if (!(error instanceof PiesError)) throw error;
    io.stderr(`tpies: ${error.message}\n${TPIES_USAGE}`);
    return EXIT.USAGE;
  }
  switch (options.action) {
    case 'help':
      io.stdout(TPIES_USAGE);
      return EXIT.OK;
    case 'version':
      io.stdout(`tpies ${packageVersion()}\n`);
      return EXIT.OK;
    case 'lint':
    case 'dump-config':
    case 'run': {
      const loaded = await load(options, io);
      if (!loaded.config) return EXIT.CONFIG;
      if (options.action === 'lint') return EXIT.OK;
      io.stdout(dumpConfig(loaded.config));
      return EXIT.OK;
    }
  }
}

// Load the config and print every diagnostic (warnings too) to stderr.
async function load(options: TpiesOptions, io: CliIo): Promise<LoadConfigResult> {
  const file = path.isAbsolute(options.configFile) ? options.configFile : path.relative(io.cwd, path.resolve(io.cwd, options.configFile));
  const loaded = await loadConfig(file, { syntax: options.syntax, includeDirs: options.includeDirs });
  const text = formatDiagnostics(loaded.diagnostics, loaded.sources);
  if (text) io.stderr(text);
  return loaded;
}

// The same module runs from src/ (tsx) and dist/src/ (built): look upwards for package.json.
function packageVersion(): string {
  for (let dir = path.dirname(new URL(import.meta.url).pathname); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tpies' && pkg.version) return pkg.version;
    } catch {
      // not here; keep looking
    }
  }
  return 'unknown';
}
