// Reads a config file and everything it `#include`s, splicing each included file's statements
// in place of its Include node. Owns include-path search, wildcard expansion, include_once,
// loop detection and the file size limit; parse.ts knows none of the file system.
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type { IncludeNode, Location, Node } from './ast.js';
import { Diagnostics, type Diagnostic, type Note } from './diagnostics.js';
import { parseConfigText } from './parse.js';
import { globToRegExp } from './glob.js';

export interface LoadOptions {
  /** The include path (`-I`), searched in order; relative entries are taken from the cwd. */
  readonly includeDirs?: readonly string[];
  /** Larger files are refused (rule `file-too-large`). Default 4 MiB. */
  readonly maxFileBytes?: number;
}

export interface LoadedTree {
  /** The main file's statements with every Include replaced, recursively, by the included statements. */
  readonly body: readonly Node[];
  /** Every file read, main first, as absolute paths (what config/watch.ts watches). */
  readonly files: readonly string[];
  /** File name as it appears in Location.file → its text, for diagnostic excerpts. */
  readonly sources: ReadonlyMap<string, string>;
  readonly diagnostics: readonly Diagnostic[];
}

export const DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024;

// Read `mainFile` and resolve its includes. Never throws for config or I/O problems: they
// come back as diagnostics, all of them, across every file.
export async function loadTree(mainFile: string, options: LoadOptions = {}): Promise<LoadedTree> {
  const loader = new Loader(options);
  const abs = path.resolve(mainFile);
  const read = await readCapped(abs, loader.maxFileBytes);
  if (read.kind === 'error') {
    loader.diagnostics.error('read', `cannot read config ${mainFile}: ${read.reason}`);
    return loader.result([]);
  }
  loader.addFile(abs);
  if (read.kind === 'too-large') {
    loader.diagnostics.error('file-too-large', tooLargeMessage(mainFile, read.size, loader.maxFileBytes));
    return loader.result([]);
  }
  return loader.result(await loader.loadMain(read.text, mainFile, abs, read.id));
}

// Same as loadTree for a main file whose text is already in memory (tests, the control API).
// Includes resolve against `file`'s directory; `files` lists only what was read from disk,
// so the in-memory main file is not in it.
export async function loadTreeFromText(text: string, file: string, options: LoadOptions = {}): Promise<LoadedTree> {
  const loader = new Loader(options);
  const abs = path.resolve(file);
  const size = Buffer.byteLength(text, 'utf8');
  if (size > loader.maxFileBytes) {
    loader.diagnostics.error('file-too-large', tooLargeMessage(file, size, loader.maxFileBytes));
    return loader.result([]);
  }
  // If the name exists on disk, use its identity so `#include` of the main file is still a loop.
  const id = await stat(abs, { bigint: true }).then(identity, () => `memory:${abs}`);
  return loader.result(await loader.loadMain(text, file, abs, id));
}

/** One file on the current include chain. */
interface Frame {
  readonly id: string;
  readonly name: string;
  readonly abs: string;
  /** Where it was included from; absent for the main file. */
  readonly includedAt?: Location;
}

class Loader {
  readonly diagnostics = new Diagnostics();
  readonly maxFileBytes: number;
  private readonly includeDirs: readonly string[];
  private readonly files: string[] = [];
  private readonly sources = new Map<string, string>();
  // Every file identity ever loaded, for include_once (grecs keys it by device+inode).
  private readonly seen = new Set<string>();

  constructor(options: LoadOptions) {
    const max = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new TypeError(`Expected the \`maxFileBytes\` option to be a non-negative integer, got ${String(max)}`);
    }
    this.maxFileBytes = max;
    this.includeDirs = (options.includeDirs ?? []).map((d) => path.resolve(d));
  }

  addFile(abs: string): void {
    if (!this.files.includes(abs)) this.files.push(abs);
  }

  result(body: readonly Node[]): LoadedTree {
    return { body, files: this.files, sources: this.sources, diagnostics: this.diagnostics.list };
  }

  async loadMain(text: string, name: string, abs: string, id: string): Promise<readonly Node[]> {
    this.seen.add(id);
    return this.parseAndExpand(text, { id, name, abs }, []);
  }

  private async parseAndExpand(text: string, frame: Frame, stack: readonly Frame[]): Promise<readonly Node[]> {
    this.sources.set(frame.name, text);
    const parsed = parseConfigText(text, frame.name);
    for (const d of parsed.diagnostics) this.diagnostics.add(d);
    if (!parsed.file) return [];
    // Every #include line has the word: without it, there is no tree to walk for Include nodes.
    if (!text.includes('include')) return parsed.file.body;
    return this.expand(parsed.file.body, [...stack, frame]);
  }

  private async expand(body: readonly Node[], stack: readonly Frame[]): Promise<readonly Node[]> {
    // Most blocks hold no #include: they are kept as they are, not copied.
    if (!hasInclude(body)) return body;
    const out: Node[] = [];
    for (const node of body) {
      if (node.type === 'Include') out.push(...(await this.include(node, stack)));
      else if (node.block) out.push({ ...node, block: await this.expand(node.block, stack) });
      else out.push(node);
    }
    return out;
  }

  private async include(node: IncludeNode, stack: readonly Frame[]): Promise<Node[]> {
    // Resolve against the real including file, not Location.file, which `#line` may rename.
    const including = stack.at(-1);
    if (!including) throw new Error('include outside any file');
    const dirs = path.isAbsolute(node.target)
      ? []
      : unique(node.system ? this.includeDirs : [path.dirname(including.abs), ...this.includeDirs]);
    const targets = await resolveTargets(node.target, dirs);
    if (targets === null) {
      this.diagnostics.error('include', this.notFoundMessage(node, dirs), node.location);
      return [];
    }
    const out: Node[] = [];
    for (const abs of targets) out.push(...(await this.loadIncluded(abs, node, stack)));
    return out;
  }

  private async loadIncluded(abs: string, node: IncludeNode, stack: readonly Frame[]): Promise<readonly Node[]> {
    const name = displayName(abs);
    const read = await readCapped(abs, this.maxFileBytes);
    if (read.kind === 'error') {
      this.diagnostics.error('read', `cannot read include file ${name}: ${read.reason}`, node.location);
      return [];
    }
    // grecs checks include_once before recursion, so `#include_once` of an ancestor is a no-op.
    if (node.once && this.seen.has(read.id)) return [];
    const loopStart = stack.findIndex((f) => f.id === read.id);
    if (loopStart >= 0) {
      this.diagnostics.error('include-loop', `recursive inclusion of ${name}`, node.location, loopNotes(stack.slice(loopStart), name));
      return [];
    }
    this.seen.add(read.id);
    this.addFile(abs);
    if (read.kind === 'too-large') {
      this.diagnostics.error('file-too-large', tooLargeMessage(name, read.size, this.maxFileBytes), node.location);
      return [];
    }
    return this.parseAndExpand(read.text, { id: read.id, name, abs, includedAt: node.location }, stack);
  }

  private notFoundMessage(node: IncludeNode, dirs: readonly string[]): string {
    const shown = node.system ? `<${node.target}>` : `"${node.target}"`;
    if (path.isAbsolute(node.target)) return `cannot find include file ${shown}`;
    if (dirs.length === 0) return `cannot find include file ${shown}: no include directories given (-I)`;
    return `cannot find include file ${shown} (searched ${dirs.map(displayName).join(', ')})`;
  }
}

function hasInclude(body: readonly Node[]): boolean {
  for (const node of body) {
    if (node.type === 'Include' || (node.block !== undefined && hasInclude(node.block))) return true;
  }
  return false;
}

// The chain a→b→…→a as one readable line, then where each link was included.
function loopNotes(cycle: readonly Frame[], again: string): Note[] {
  const notes: Note[] = [{ message: `include chain: ${[...cycle.map((f) => f.name), again].join(' -> ')}` }];
  for (const frame of cycle) {
    notes.push(frame.includedAt ? { message: `${frame.name} included from here`, location: frame.includedAt } : { message: `${frame.name} is the main config file` });
  }
  return notes;
}

// `size` is only exact when fstat knew it; a stream that grows past the cap reports max + 1.
function tooLargeMessage(name: string, size: number, max: number): string {
  return size > max + 1 ? `${name} is too large (${size} bytes; the limit is ${max})` : `${name} is too large (over the ${max}-byte limit)`;
}

// The files an include names: one for a plain name, zero or more (sorted) for a wildcard,
// null when a plain name is found nowhere.
async function resolveTargets(target: string, dirs: readonly string[]): Promise<string[] | null> {
  const slash = target.lastIndexOf('/');
  const base = target.slice(slash + 1);
  if (!hasWildcard(base)) {
    const candidates = path.isAbsolute(target) ? [target] : dirs.map((d) => path.resolve(d, target));
    for (const candidate of candidates) if (await exists(candidate)) return [candidate];
    return null;
  }
  // Directories in the pattern are literal; the first search dir that has them wins, like a plain name.
  const dirPart = slash >= 0 ? target.slice(0, slash + 1) : '';
  const patternDirs = path.isAbsolute(target) ? [dirPart] : dirs.map((d) => path.resolve(d, dirPart));
  const pattern = globToRegExp(base);
  for (const dir of patternDirs) {
    const entries = await readdir(dir).catch(() => null);
    if (entries === null) continue;
    // Code-unit order rather than locale order, so the result does not depend on LANG.
    const matches = entries.filter((e) => pattern.test(e)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const files: string[] = [];
    // A subdirectory that happens to match (conf.d/*) is not a config file; skip it quietly.
    for (const m of matches) {
      const abs = path.join(dir, m);
      const st = await stat(abs).catch(() => null);
      if (st && !st.isDirectory()) files.push(abs);
    }
    return files;
  }
  return [];
}

function hasWildcard(name: string): boolean {
  return /[*?[]/.test(name);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

function unique(dirs: readonly string[]): string[] {
  return [...new Set(dirs)];
}

// Relative to the cwd when the file is under it, else absolute: short but unambiguous.
function displayName(abs: string): string {
  const rel = path.relative(process.cwd(), abs);
  if (rel === '') return '.';
  return rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel) ? abs : rel;
}

function identity(st: { dev: bigint; ino: bigint }): string {
  return `${st.dev}:${st.ino}`;
}

type ReadResult =
  | { readonly kind: 'ok'; readonly id: string; readonly text: string }
  | { readonly kind: 'too-large'; readonly id: string; readonly size: number }
  | { readonly kind: 'error'; readonly reason: string };

// Read a whole file but never more than `max` + 1 bytes, so a huge or endless file (a FIFO,
// /dev/zero) cannot exhaust memory even when fstat reports size 0.
export async function readCapped(abs: string, max: number): Promise<ReadResult> {
  let handle;
  try {
    handle = await open(abs, 'r');
  } catch (error) {
    return { kind: 'error', reason: systemReason(error) };
  }
  try {
    const st = await handle.stat({ bigint: true });
    const id = identity(st);
    if (st.isDirectory()) return { kind: 'error', reason: systemReasonFor('EISDIR', 'is a directory') };
    if (st.size > BigInt(max)) return { kind: 'too-large', id, size: Number(st.size) };
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, max + 1 - total));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > max) return { kind: 'too-large', id, size: total };
    }
    return { kind: 'ok', id, text: Buffer.concat(chunks, total).toString('utf8') };
  } catch (error) {
    return { kind: 'error', reason: systemReason(error) };
  } finally {
    await handle.close();
  }
}

// "no such file or directory" rather than Node's "ENOENT: no such file or directory, open '…'":
// the diagnostic already names the file.
function systemReason(error: unknown): string {
  if (error instanceof Error && 'errno' in error && typeof error.errno === 'number') {
    const known = getSystemErrorMap().get(error.errno);
    if (known) return known[1];
  }
  return error instanceof Error ? error.message : String(error);
}

function systemReasonFor(code: string, fallback: string): string {
  for (const [name, message] of getSystemErrorMap().values()) if (name === code) return message;
  return fallback;
}
