// The public entry of config/: file(s) → loaded tree → built model → checks → a Config,
// or every diagnostic when anything is wrong (nothing runs from a config with errors).
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Node, StatementNode } from './ast.js';
import { CHECKS } from './checks/index.js';
import { buildConfig } from './build.js';
import { Diagnostics, type Diagnostic, type Sources } from './diagnostics.js';
import { parseInetdConf } from './inetd-conf.js';
import { DEFAULT_MAX_FILE_BYTES, type LoadOptions, loadTree, readCapped } from './load.js';
import type { Config } from './model.js';
import { isScalar } from './values.js';
import { parseServicesFile } from '../inetd/socket-address.js';

export interface LoadConfigOptions extends LoadOptions {
  /** `pies` (default) or classic `inetd` (inetd.conf) syntax for the main file. */
  readonly syntax?: 'pies' | 'inetd';
  /** Where service names in socket URLs are looked up; default /etc/services. */
  readonly servicesFile?: string;
}

export interface LoadConfigResult {
  /** Null when any diagnostic is an error. */
  readonly config: Config | null;
  readonly diagnostics: readonly Diagnostic[];
  readonly sources: Sources;
  readonly files: readonly string[];
}

// Load, build and check a config file; never throws for problems in the config.
export async function loadConfig(file: string, options: LoadConfigOptions = {}): Promise<LoadConfigResult> {
  const diags = new Diagnostics();
  const sources = new Map<string, string>();
  let body: readonly Node[];
  let files: string[];
  if (options.syntax === 'inetd') {
    const inetd = await readInetd(file, diags, sources, options.maxFileBytes);
    body = inetd.body;
    files = inetd.files;
  } else {
    const tree = await loadTree(file, options);
    tree.diagnostics.forEach((d) => diags.add(d));
    tree.sources.forEach((text, name) => sources.set(name, text));
    files = [...tree.files];
    const expanded = await expandIncludeInetd(tree.body, diags, sources, options.maxFileBytes);
    body = expanded.body;
    files.push(...expanded.files);
  }
  const services = await loadServices(options.servicesFile ?? '/etc/services');
  const config = buildConfig(body, { diags, services }, files);
  for (const check of CHECKS) check(config, diags);
  return { config: diags.hasErrors ? null : config, diagnostics: diags.list, sources, files };
}

// `include-inetd FILE|DIR;` at the top level: the inetd.conf file(s) become components in
// place (a directory means every regular file in it, sorted, as GNU inetd reads inetd.d).
// A relative name is taken from the directory of the file that holds the statement, as
// its location names it (so after a `#line N "other"` rename, from other's directory).
async function expandIncludeInetd(body: readonly Node[], diags: Diagnostics, sources: Map<string, string>, maxFileBytes?: number): Promise<{ body: Node[]; files: string[] }> {
  const out: Node[] = [];
  const files: string[] = [];
  for (const node of body) {
    if (node.type !== 'Statement' || node.name !== 'include-inetd') {
      out.push(node);
      continue;
    }
    const target = node.values[0];
    if (node.values.length !== 1 || !target || !isScalar(target) || node.block) {
      diags.error('arity', '"include-inetd" takes one file or directory name', node.location);
      continue;
    }
    const where = path.resolve(path.dirname(node.location.file), target.value);
    const names = await inetdFiles(where).catch((e: NodeJS.ErrnoException) => {
      diags.error('read', `cannot read inetd configuration ${target.value}: ${e.code === 'ENOENT' ? 'no such file or directory' : e.message}`, target.location);
      return [];
    });
    for (const name of names) {
      const inetd = await readInetd(path.relative(process.cwd(), name) || name, diags, sources, maxFileBytes);
      out.push(...inetd.body);
      files.push(...inetd.files);
    }
  }
  return { body: out, files };
}

async function inetdFiles(where: string): Promise<string[]> {
  if (!(await stat(where)).isDirectory()) return [where];
  const entries = await readdir(where, { withFileTypes: true });
  return entries.filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => path.join(where, e.name)).sort();
}

// Capped like every pies-syntax file: `include-inetd /dev/urandom` must not read forever.
async function readInetd(file: string, diags: Diagnostics, sources: Map<string, string>, maxFileBytes = DEFAULT_MAX_FILE_BYTES): Promise<{ body: StatementNode[]; files: string[] }> {
  const read = await readCapped(path.resolve(file), maxFileBytes);
  if (read.kind !== 'ok') {
    if (read.kind === 'too-large') diags.error('file-too-large', `${file} is too large (over the ${maxFileBytes}-byte limit)`);
    else diags.error('read', `cannot read config ${file}: ${read.reason}`);
    return { body: [], files: [] };
  }
  const { text } = read;
  sources.set(file, text);
  const parsed = parseInetdConf(text, file);
  parsed.diagnostics.forEach((d) => diags.add(d));
  return { body: parsed.body, files: [path.resolve(file)] };
}

const servicesCache = new Map<string, Promise<Map<string, number>>>();

function loadServices(file: string): Promise<Map<string, number>> {
  let services = servicesCache.get(file);
  if (!services) {
    services = readFile(file, 'utf8').then(parseServicesFile, () => new Map<string, number>());
    servicesCache.set(file, services);
  }
  return services;
}

export type { Config } from './model.js';
export { formatDiagnostics } from './diagnostics.js';
