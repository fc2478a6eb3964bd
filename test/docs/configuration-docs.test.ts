// docs/configuration.md and etc/ against the code: every statement the schema knows has a
// `### keyword` entry in its block's section, and every shipped *.conf loads without a
// single diagnostic (so the examples the docs point at stay valid).
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatDiagnostics, loadConfig } from '../../src/config/index.js';
import { parseConfigText } from '../../src/config/parse.js';
import {
  type BlockSpec,
  COMPONENT_STATEMENTS,
  CONTROL_STATEMENTS,
  GLOBAL_STATEMENTS,
  RESPAWN_STATEMENTS,
  SYSLOG_STATEMENTS,
} from '../../src/config/schema.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOC = path.join(ROOT, 'docs/configuration.md');
const NOT_SUPPORTED = 'Not supported';
const PROCESS = 'Process statements';

// The statements of the env, ACL and return-code blocks live in src/config/read/*.ts as
// private switch cases, not in schema tables; keep this list in step with those readers.
const READER_STATEMENTS: ReadonlyArray<{ block: string; keywords: readonly string[]; section: string }> = [
  { block: 'env', keywords: ['clear', 'keep', 'set', 'unset', 'eval'], section: 'The env block' },
  { block: 'acl', keywords: ['allow', 'deny'], section: 'ACL entries' },
  { block: 'return-code', keywords: ['action', 'exec', 'notify', 'message'], section: 'The return-code block' },
];

// Each schema table and the `## ` sections (by title prefix) where its keywords may be documented.
const TABLES: ReadonlyArray<{ block: string; spec: BlockSpec; sections: readonly string[] }> = [
  { block: 'top level', spec: GLOBAL_STATEMENTS, sections: ['Top-level statements', PROCESS, NOT_SUPPORTED] },
  { block: 'component', spec: COMPONENT_STATEMENTS, sections: ['Component statements', PROCESS, NOT_SUPPORTED] },
  { block: 'control', spec: CONTROL_STATEMENTS, sections: ['The control block'] },
  { block: 'syslog', spec: SYSLOG_STATEMENTS, sections: ['The syslog block'] },
  { block: 'respawn', spec: RESPAWN_STATEMENTS, sections: ['The respawn block'] },
];

interface Doc {
  /** `## ` title → the `### ` headings under it (backticks removed). */
  readonly sections: ReadonlyMap<string, readonly string[]>;
  /** Info string and text of every fenced code block. */
  readonly fences: ReadonlyArray<{ info: string; text: string; line: number }>;
}

function readDoc(text: string): Doc {
  const sections = new Map<string, string[]>();
  const fences: { info: string; text: string; line: number }[] = [];
  let current: string[] | undefined;
  let fence: { info: string; lines: string[]; line: number } | undefined;
  for (const [i, line] of text.split('\n').entries()) {
    if (fence) {
      if (line.startsWith('```')) {
        fences.push({ info: fence.info, text: fence.lines.join('\n'), line: fence.line });
        fence = undefined;
      } else fence.lines.push(line);
      continue;
    }
    if (line.startsWith('```')) {
      fence = { info: line.slice(3).trim(), lines: [], line: i + 1 };
      continue;
    }
    const h2 = /^## (.+)$/.exec(line);
    if (h2) {
      current = [];
      sections.set(h2[1]!.trim(), current);
      continue;
    }
    const h3 = /^### (.+)$/.exec(line);
    if (h3 && current) current.push(h3[1]!.replace(/`/g, '').trim());
  }
  assert.equal(fence, undefined, 'docs/configuration.md has an unclosed code fence');
  return { sections, fences };
}

// The headings of every section whose title starts with one of `prefixes`.
function headingsIn(doc: Doc, prefixes: readonly string[]): Set<string> {
  const found = new Set<string>();
  for (const prefix of prefixes) {
    const titles = [...doc.sections.keys()].filter((t) => t.startsWith(prefix));
    assert.ok(titles.length > 0, `docs/configuration.md has no "## ${prefix}…" section`);
    for (const t of titles) for (const h of doc.sections.get(t)!) found.add(h);
  }
  return found;
}

const isKeyword = (heading: string): boolean => /^[a-z][a-z0-9-]*$/.test(heading);

test('every schema statement has a ### entry in its block section of docs/configuration.md', async () => {
  const doc = readDoc(await readFile(DOC, 'utf8'));
  const missing: string[] = [];
  for (const { block, spec, sections } of TABLES) {
    const documented = headingsIn(doc, sections);
    for (const keyword of Object.keys(spec)) if (!documented.has(keyword)) missing.push(`${block}: ${keyword} (expected under ${sections.map((s) => `"## ${s}"`).join(' or ')})`);
  }
  for (const { block, keywords, section } of READER_STATEMENTS) {
    const documented = headingsIn(doc, [section]);
    for (const keyword of keywords) if (!documented.has(keyword)) missing.push(`${block}: ${keyword} (expected under "## ${section}")`);
  }
  assert.deepEqual(missing, [], `undocumented statements:\n  ${missing.join('\n  ')}`);
});

test('refused pies statements are documented under "Not supported", and only those', async () => {
  const doc = readDoc(await readFile(DOC, 'utf8'));
  const notSupported = headingsIn(doc, [NOT_SUPPORTED]);
  for (const { block, spec } of TABLES) {
    for (const [keyword, entry] of Object.entries(spec)) {
      if (entry.unsupported) assert.ok(notSupported.has(keyword), `${block}: "${keyword}" is refused by tpies but has no ### entry under "## ${NOT_SUPPORTED}"`);
      else assert.ok(!notSupported.has(keyword), `${block}: "${keyword}" is supported but documented under "## ${NOT_SUPPORTED}"`);
    }
  }
});

test('no ### entry in a block section names a statement that block does not have', async () => {
  const doc = readDoc(await readFile(DOC, 'utf8'));
  const inBoth = Object.keys(GLOBAL_STATEMENTS).filter((k) => Object.hasOwn(COMPONENT_STATEMENTS, k));
  const expected: ReadonlyArray<[string, readonly string[]]> = [
    ['Top-level statements', Object.keys(GLOBAL_STATEMENTS)],
    [PROCESS, inBoth],
    ['Component statements', Object.keys(COMPONENT_STATEMENTS)],
    ['The control block', Object.keys(CONTROL_STATEMENTS)],
    ['The syslog block', Object.keys(SYSLOG_STATEMENTS)],
    ['The respawn block', Object.keys(RESPAWN_STATEMENTS)],
    ...READER_STATEMENTS.map((r): [string, readonly string[]] => [r.section, r.keywords]),
  ];
  const stale: string[] = [];
  for (const [section, keywords] of expected) {
    for (const heading of headingsIn(doc, [section])) if (isKeyword(heading) && !keywords.includes(heading)) stale.push(`"## ${section}": ### ${heading}`);
  }
  assert.deepEqual(stale, [], `entries for statements the block does not have:\n  ${stale.join('\n  ')}`);
});

test('every pies example (```pies fence) in docs/configuration.md parses without diagnostics', async () => {
  const doc = readDoc(await readFile(DOC, 'utf8'));
  const examples = doc.fences.filter((f) => f.info === 'pies');
  assert.ok(examples.length > 50, `expected the statement entries to have pies examples, found ${examples.length}`);
  for (const { text, line } of examples) {
    const parsed = parseConfigText(text, `docs/configuration.md example at line ${line}`);
    assert.deepEqual(parsed.diagnostics.map((d) => `${d.location?.line}:${d.location?.column}: ${d.message}`), [], `example at docs/configuration.md:${line}`);
  }
});

// etc/**/*.conf; a file named inetd.conf (or *.inetd.conf) is in inetd.conf syntax.
async function confFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const abs = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await confFiles(abs)));
    else if (entry.isFile() && entry.name.endsWith('.conf')) out.push(abs);
  }
  return out.sort();
}

const syntaxOf = (file: string): 'pies' | 'inetd' => (/(^|\.)inetd\.conf$/.test(path.basename(file)) ? 'inetd' : 'pies');

test('every etc/**/*.conf loads with zero diagnostics', async (t) => {
  const files = await confFiles(path.join(ROOT, 'etc'));
  for (const expected of ['tpies.conf', 'examples/respawn.conf', 'examples/inetd-echo.conf', 'examples/tcpmux.conf', 'examples/acl.conf', 'examples/inetd.conf', 'examples/include.conf']) {
    assert.ok(files.includes(path.join(ROOT, 'etc', expected)), `etc/${expected} is missing`);
  }
  // Which file defines a listener on which TCP port: the examples must not collide.
  const portOwners = new Map<number, Set<string>>();
  for (const file of files) {
    const rel = path.relative(ROOT, file);
    await t.test(rel, async () => {
      const loaded = await loadConfig(file, { syntax: syntaxOf(file) });
      assert.deepEqual(loaded.diagnostics, [], `${rel} (syntax ${syntaxOf(file)}):\n${formatDiagnostics(loaded.diagnostics, loaded.sources)}`);
      assert.ok(loaded.config);
      for (const c of loaded.config.components) {
        if (c.socket?.kind !== 'inet' || c.socket.port === 0) continue;
        const owners = portOwners.get(c.socket.port) ?? new Set<string>();
        owners.add(path.resolve(c.location.file));
        portOwners.set(c.socket.port, owners);
      }
    });
  }
  const shared = [...portOwners].filter(([, owners]) => owners.size > 1).map(([port, owners]) => `${port}: ${[...owners].map((o) => path.relative(ROOT, o)).join(', ')}`);
  assert.deepEqual(shared, [], `example configs listen on the same port:\n  ${shared.join('\n  ')}`);
});
