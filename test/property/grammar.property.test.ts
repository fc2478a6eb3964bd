// Property tests of the config grammar and printer: random trees survive print → parse,
// and no input (random bytes, or corpus files with random edits) makes the parser throw,
// hang, or fail without a located error.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { IncludeNode, Location, Node, StatementNode, ValueNode } from '../../src/config/ast.js';
import { parseConfigText, parseValueText } from '../../src/config/parse.js';
import { printTree, printValue } from '../../src/config/print.js';
import { normalizeForPrint, stripLocations } from '../helpers/ast.js';

const NOWHERE: Location = { file: 'gen', line: 1, column: 1 };
const OK_DIR = fileURLToPath(new URL('../grammar/ok/', import.meta.url));
const CORPUS = readdirSync(OK_DIR)
  .filter((f) => f.endsWith('.conf'))
  .sort()
  .map((f) => readFileSync(join(OK_DIR, f), 'utf8'));
// A hang shows up as a slow case long before the test runner's timeout would fire.
const SLOW_MS = 2000;

// ---- generators of syntax trees ----

const identifier = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_-]{0,8}$/);

// Characters that matter to the lexer, so that strings hit escapes, comment openers and
// would-be directives far more often than uniform unicode would.
const tricky = fc.constantFrom('\\', '"', '\n', '\r', '\t', '\x07', '\b', '\f', '\v', '\0', '\x1b', '\x7f', '#', '/', '*', ';', '{', '(', ',', ' ', 'EOT', '#line ', '#include ', '<<', 'é', '\u2028', '😀');
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: fc.oneof(tricky, fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 })), maxLength: 10 }),
  fc.string({ unit: fc.oneof(tricky, fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 })), maxLength: 10 }).map((s) => `${s}\n`),
);
const bareWord = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_.*/:@-](?:[A-Za-z0-9_./:@-][A-Za-z0-9_.*/:@-]{0,10})?$/).filter((w) => !w.startsWith('//')),
  fc.constantFrom('inet://0.0.0.0:1', '10.0.0.0/8', '/usr/bin/x', '/etc/x/*.conf', 'a/*b', '*', '-', 'foo.bar', 'EOT'),
);

const word: fc.Arbitrary<ValueNode> = fc
  .oneof({ weight: 4, arbitrary: bareWord }, { weight: 1, arbitrary: anyText })
  .map((value) => ({ type: 'Word', value, location: NOWHERE }));
const string: fc.Arbitrary<ValueNode> = fc
  .oneof({ weight: 3, arbitrary: anyText }, { weight: 1, arbitrary: bareWord })
  .map((value) => ({ type: 'String', value, location: NOWHERE }));
const hereDoc: fc.Arbitrary<ValueNode> = anyText.map((value) => ({ type: 'HereDoc', value, location: NOWHERE }));

const { value } = fc.letrec<{ value: ValueNode; list: ValueNode }>((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, word, string, hereDoc, tie('list')),
  list: fc.array(tie('value'), { maxLength: 4 }).map((items) => ({ type: 'List', items, location: NOWHERE })),
}));

const include: fc.Arbitrary<IncludeNode> = fc
  .record({
    once: fc.boolean(),
    system: fc.boolean(),
    target: fc.oneof(fc.stringMatching(/^[^"<>\n]{1,12}$/), fc.stringMatching(/^[A-Za-z0-9./*-]{1,5}"[A-Za-z0-9./*"-]{0,5}$/)),
  })
  .map(({ once, system, target }) => ({ type: 'Include', once, system: system && !target.includes('"'), target, location: NOWHERE }));

const { body } = fc.letrec<{ body: Node[]; node: Node; statement: StatementNode }>((tie) => ({
  body: fc.array(tie('node'), { maxLength: 4 }),
  node: fc.oneof({ weight: 6, arbitrary: tie('statement') }, { weight: 1, arbitrary: include }),
  statement: fc
    .record({ name: identifier, values: fc.array(value, { maxLength: 4 }), block: fc.option(tie('body'), { nil: undefined, depthSize: 'small' }) })
    .map(({ name, values, block }): StatementNode =>
      block === undefined ? { type: 'Statement', name, values, location: NOWHERE } : { type: 'Statement', name, values, block, location: NOWHERE },
    ),
}));

// ---- (a) print → parse round trip ----

test('printed trees parse back to the same tree, modulo the documented kind changes', () => {
  fc.assert(
    fc.property(body, (tree) => {
      const expected = normalizeForPrint(tree);
      const text = printTree(tree);
      const result = parseConfigText(text, 'printed.conf');
      assert.deepEqual(result.diagnostics, [], text);
      assert.ok(result.file, text);
      assert.deepEqual(stripLocations(result.file.body), expected, text);
      // Canonical: printing what was read back gives the same text again.
      assert.equal(printTree(result.file.body), text);
    }),
    { numRuns: 3000 },
  );
});

test('printValue output parses back as one value', () => {
  fc.assert(
    fc.property(value, (v) => {
      const text = printValue(v);
      const result = parseValueText(text);
      assert.deepEqual(result.diagnostics, [], text);
      assert.ok(result.value, text);
      // A lone value has no neighbour, so only the Word/HereDoc → String changes apply.
      const [statement] = normalizeForPrint([{ type: 'Statement', name: 'x', values: [v], location: NOWHERE }]);
      assert.deepEqual(stripLocations(result.value), (statement as { values: unknown[] }).values[0], text);
    }),
    { numRuns: 1000 },
  );
});

// ---- (b) robustness on arbitrary and damaged input ----

// The parser must answer every input with a tree or a located error, promptly; a tree
// it accepts must itself survive printing.
function checkParse(text: string): void {
  const started = performance.now();
  const result = parseConfigText(text, 'fuzz.conf');
  const elapsed = performance.now() - started;
  assert.ok(elapsed < SLOW_MS, `parsing took ${elapsed} ms: ${JSON.stringify(text)}`);
  // Line 0 is legitimate: `#line 0` (which cpp emits) numbers the next line 0.
  for (const d of result.diagnostics) {
    assert.ok(d.location && Number.isInteger(d.location.line) && d.location.line >= 0 && d.location.column >= 1, `unlocated diagnostic ${JSON.stringify(d)}`);
  }
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (result.file === null) {
    assert.ok(errors.length >= 1, `no tree and no error for ${JSON.stringify(text)}`);
    return;
  }
  assert.deepEqual(errors, []);
  const printed = printTree(result.file.body);
  const again = parseConfigText(printed, 'printed.conf');
  assert.ok(again.file, `${JSON.stringify(text)} printed as ${JSON.stringify(printed)}: ${JSON.stringify(again.diagnostics)}`);
  assert.deepEqual(stripLocations(again.file.body), normalizeForPrint(result.file.body), printed);
}

const lexemes = fc.constantFrom(
  'a', 'x', 'EOT', '1', '-', '.', '/', '*', '#', '"', '\\', '\n', '\n', ' ', '\t', '\r', '\f', '\0', 'é',
  ';', '{', '}', '(', ')', ',', '<<', '<<-', '<<- ', '<<\\', '//', '/*', '*/', '#line 3', '# 4 "f"', '#include ', '#include_once ',
);

test('random bytes never throw: a tree or a located error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 160 }), fc.boolean(), (bytes, asUtf8) => {
      checkParse(asUtf8 ? new TextDecoder().decode(bytes) : Buffer.from(bytes).toString('latin1'));
    }),
    { numRuns: 3000 },
  );
});

test('random token soup never throws: a tree or a located error', () => {
  fc.assert(
    fc.property(fc.array(lexemes, { maxLength: 40 }), (parts) => checkParse(parts.join(''))),
    { numRuns: 5000 },
  );
});

type Edit = { at: number; kind: 'insert' | 'delete' | 'replace'; text: string };
const edit: fc.Arbitrary<Edit> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('insert', 'delete', 'replace'),
  text: fc.oneof(lexemes, fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 2 })),
});

function applyEdits(source: string, edits: readonly Edit[]): string {
  let text = source;
  for (const { at, kind, text: piece } of edits) {
    const i = text.length === 0 ? 0 : at % (text.length + 1);
    if (kind === 'insert') text = text.slice(0, i) + piece + text.slice(i);
    else if (kind === 'delete') text = text.slice(0, i) + text.slice(i + 1 + (at % 3));
    else text = text.slice(0, i) + piece + text.slice(i + piece.length);
  }
  return text;
}

test('corpus files with random edits never throw: a tree or a located error', () => {
  fc.assert(
    fc.property(fc.nat({ max: CORPUS.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 5 }), (which, edits) => {
      checkParse(applyEdits(CORPUS[which] ?? '', edits));
    }),
    { numRuns: 5000 },
  );
});

test('pathological shapes stay fast and never overflow the stack', () => {
  for (const text of [
    `a ${'('.repeat(100_000)}`,
    `a ${'{'.repeat(100_000)}`,
    `a ${'('.repeat(150)}${')'.repeat(150)};`,
    `a "${'\\'.repeat(100_001)}`,
    `/*${'*'.repeat(100_000)}`,
    `a <<EOT\n${'x\n'.repeat(50_000)}`,
    `${'#line 1\n'.repeat(20_000)}a;`,
    `a ${'"x" '.repeat(20_000)};`,
  ]) {
    checkParse(text);
  }
});
