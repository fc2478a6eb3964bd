// The whole config pipeline (loadConfig: read → parse → build → checks) on hostile input:
// random bytes, token soup, and valid configs (golden ok corpus, etc/) with random edits,
// in pies and inetd syntax. It must never throw or hang, and must answer with either a
// Config and no errors, or no Config and at least one error, every one of them located
// (or a `read` failure, which has no line to point at).
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { dumpConfig } from '../../src/config/dump.js';
import { formatDiagnostics, loadConfig, type LoadConfigOptions } from '../../src/config/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TMP = mkdtempSync(join(tmpdir(), 'tpies-fuzz-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
// A hang shows up as a slow case long before the runner's timeout would fire.
const SLOW_MS = 2000;
// Mutated files are written here; the golden corpus' include and etc/'s conf.d sit beside them.
const FILE = join(TMP, 'fuzz.conf');
// Named ports resolve against the corpus' own services file, not the host's.
const SERVICES = join(ROOT, 'test/config/golden/services');

function confFilesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((f) => f.endsWith('.conf'))
    .sort()
    .map((f) => join(dir, f));
}

const isInetd = (file: string): boolean => basename(file) === 'inetd.conf' || file.includes('/fixtures/conf/inetd/');
const SOURCES = [...confFilesUnder(join(ROOT, 'test/config/golden/ok')), ...confFilesUnder(join(ROOT, 'etc')), ...confFilesUnder(join(ROOT, 'test/fixtures/conf/inetd'))];
const PIES_CORPUS = SOURCES.filter((f) => !isInetd(f)).map((f) => readFileSync(f, 'utf8'));
const INETD_CORPUS = SOURCES.filter(isInetd).map((f) => readFileSync(f, 'utf8'));
for (const inc of readdirSync(join(ROOT, 'test/config/golden/ok')).filter((f) => f.endsWith('.inc'))) {
  cpSync(join(ROOT, 'test/config/golden/ok', inc), join(TMP, inc));
}
if (existsSync(join(ROOT, 'etc/examples/conf.d'))) cpSync(join(ROOT, 'etc/examples/conf.d'), join(TMP, 'conf.d'), { recursive: true });

let cases = 0;

// One run of the pipeline on `content`, with every promise the test makes about the answer.
async function check(content: string | Uint8Array, options: LoadConfigOptions = {}): Promise<void> {
  cases++;
  writeFileSync(FILE, content);
  const started = performance.now();
  const result = await loadConfig(FILE, { servicesFile: SERVICES, ...options });
  const elapsed = performance.now() - started;
  const shown = typeof content === 'string' ? JSON.stringify(content) : `bytes ${Buffer.from(content).toString('hex')}`;
  assert.ok(elapsed < SLOW_MS, `loadConfig took ${Math.round(elapsed)} ms on ${shown}`);
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  for (const d of result.diagnostics) {
    if (d.rule === 'read') continue;
    assert.ok(d.location, `unlocated ${d.severity} (${d.rule}: ${d.message}) on ${shown}`);
    // `#line 0` legitimately numbers the next line 0.
    assert.ok(Number.isInteger(d.location.line) && d.location.line >= 0, `bad line in ${JSON.stringify(d)}`);
    assert.ok(Number.isInteger(d.location.column) && d.location.column >= 1, `bad column in ${JSON.stringify(d)}`);
    assert.ok(d.message.length > 0);
  }
  // Printing the diagnostics is part of the answer; it must not throw either.
  const text = formatDiagnostics(result.diagnostics, result.sources);
  if (result.config === null) {
    assert.ok(errors.length >= 1, `no config and no error on ${shown}`);
    assert.match(text, /\d+ errors?(, \d+ warnings?)?\n$/);
  } else {
    assert.deepEqual(errors, [], `a config came back with errors on ${shown}`);
    assert.equal(typeof dumpConfig(result.config), 'string');
  }
}

// ---- edits that reach the builder and the checks, not only the parser ----

const lexemes = fc.constantFrom(
  ';', '{', '}', '(', ')', ',', '"', '\\', '\n', ' ', '#', '/*', '*/', '<<EOT\n', '#include ', '#line 7\n', '\0', 'é',
  'component', 'mode', 'inetd', 'accept', 'respawn', 'pass-fd', 'flags', 'internal', 'tcpmux', 'tcpmuxplus', 'wait',
  'service', 'socket', 'tcpmux-master', 'prerequisites', 'dependents', 'all', 'acl', 'defacl', 'allow', 'deny', 'from',
  'any', 'env', 'limits', 'umask', 'return-code', 'SIGTERM', 'EX_USAGE', 'command', 'program', 'include-inetd',
  'inet://127.0.0.1:7000', 'inet6://[::1]:0', 'unix:///tmp/x.sock', '10.0.0.0/8', '0x1F', '-1', '0777', '99999999999999999999999',
  '1.5', 'yes', 'nil', 'echo', 'N1024', 'syslog', 'file', 'control', 'respawn { limit 0; }', 'tpies', 'web', 'db',
);

type Edit =
  | { readonly kind: 'insert' | 'replace'; readonly at: number; readonly text: string }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'duplicate-line' | 'delete-line'; readonly line: number }
  | { readonly kind: 'swap-lines'; readonly line: number; readonly other: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constantFrom('insert' as const, 'replace' as const), at: fc.nat(), text: fc.oneof(lexemes, fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 3 })) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constantFrom('duplicate-line' as const, 'delete-line' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('swap-lines' as const), line: fc.nat(), other: fc.nat() }),
);

function applyEdits(source: string, edits: readonly Edit[]): string {
  let text = source;
  for (const e of edits) {
    const lines = text.split('\n');
    switch (e.kind) {
      case 'insert':
      case 'replace': {
        const i = e.at % (text.length + 1);
        text = text.slice(0, i) + e.text + text.slice(e.kind === 'insert' ? i : i + e.text.length);
        break;
      }
      case 'delete': {
        const i = e.at % (text.length + 1);
        text = text.slice(0, i) + text.slice(i + e.length);
        break;
      }
      case 'duplicate-line': {
        const i = e.line % lines.length;
        lines.splice(i, 0, lines[i] ?? '');
        text = lines.join('\n');
        break;
      }
      case 'delete-line':
        lines.splice(e.line % lines.length, 1);
        text = lines.join('\n');
        break;
      case 'swap-lines': {
        const i = e.line % lines.length;
        const j = e.other % lines.length;
        [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
        text = lines.join('\n');
        break;
      }
    }
  }
  return text;
}

test('the corpus is there to mutate', () => {
  assert.ok(PIES_CORPUS.length >= 10, `pies corpus: ${PIES_CORPUS.length} files`);
  assert.ok(INETD_CORPUS.length >= 1, `inetd corpus: ${INETD_CORPUS.length} files`);
});

test('the unmutated corpus loads cleanly (the edits start from valid configs)', async () => {
  for (const [i, text] of PIES_CORPUS.entries()) {
    writeFileSync(FILE, text);
    const result = await loadConfig(FILE, { servicesFile: SERVICES });
    assert.ok(result.config, `pies corpus file ${i}:\n${formatDiagnostics(result.diagnostics, result.sources)}`);
  }
});

test('random bytes: a config or located errors, never a throw or a hang', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.boolean(), async (bytes, inetd) => {
      await check(bytes, inetd ? { syntax: 'inetd' } : {});
    }),
    { numRuns: 600 },
  );
});

test('token soup: a config or located errors, never a throw or a hang', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(lexemes, { maxLength: 40 }), async (parts) => {
      await check(parts.join(' '));
    }),
    { numRuns: 400 },
  );
});

test('valid pies configs with random edits: a config or located errors, never a throw or a hang', async () => {
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: PIES_CORPUS.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 5 }), async (which, edits) => {
      await check(applyEdits(PIES_CORPUS[which] ?? '', edits));
    }),
    { numRuns: 1500 },
  );
});

test('valid inetd.conf files with random edits: a config or located errors, never a throw or a hang', async () => {
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: INETD_CORPUS.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 5 }), async (which, edits) => {
      await check(applyEdits(INETD_CORPUS[which] ?? '', edits), { syntax: 'inetd' });
    }),
    { numRuns: 400 },
  );
});

test('a file that cannot be read is one `read` error without a location', async () => {
  const result = await loadConfig(join(TMP, 'no-such-file.conf'));
  assert.equal(result.config, null);
  assert.equal(result.diagnostics.length, 1);
  assert.equal(result.diagnostics[0]?.rule, 'read');
  assert.match(formatDiagnostics(result.diagnostics, result.sources), /^error: cannot read config .*no-such-file\.conf: no such file or directory \[read\]\n1 error\n$/);
});

test('enough cases ran', () => {
  assert.ok(cases >= 2000, `${cases} cases`);
});
