// The grammar's golden corpus: ok/NAME.conf must parse to NAME.ast.json (locations
// stripped; warnings, if any, in NAME.warn.txt) and bad/NAME.conf must fail with exactly
// NAME.err.txt. UPDATE_GOLDEN=1 rewrites the expectations. Exact locations are tested below.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Location, Node, StatementNode, ValueNode } from '../../src/config/ast.js';
import { formatDiagnostics } from '../../src/config/diagnostics.js';
import { parseConfigText } from '../../src/config/parse.js';
import { printTree } from '../../src/config/print.js';
import { normalizeForPrint, stripLocations } from '../helpers/ast.js';
import { goldenCorpus } from '../helpers/golden.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));

const { confFiles, golden } = goldenCorpus(HERE);

function parseCorpusFile(dir: string, name: string) {
  const relative = `${dir}/${name}`;
  const text = readFileSync(join(HERE, relative), 'utf8');
  const result = parseConfigText(text, relative);
  return { text, relative, result, sources: new Map([[relative, text]]) };
}

describe('grammar golden corpus: ok', () => {
  for (const name of confFiles('ok')) {
    const base = name.slice(0, -'.conf'.length);
    test(name, () => {
      const { result, sources } = parseCorpusFile('ok', name);
      const errors = result.diagnostics.filter((d) => d.severity === 'error');
      assert.deepEqual(errors, [], formatDiagnostics(errors, sources));
      assert.ok(result.file);
      golden(`ok/${base}.ast.json`, `${JSON.stringify(stripLocations(result.file), null, 2)}\n`);
      golden(`ok/${base}.warn.txt`, formatDiagnostics(result.diagnostics, sources));
    });

    test(`${name} survives print and re-parse`, () => {
      const { result } = parseCorpusFile('ok', name);
      assert.ok(result.file);
      const printed = printTree(result.file.body);
      const again = parseConfigText(printed, 'printed.conf');
      assert.deepEqual(again.diagnostics, [], printed);
      assert.ok(again.file, printed);
      assert.deepEqual(stripLocations(again.file.body), normalizeForPrint(result.file.body), printed);
    });
  }
});

describe('grammar golden corpus: bad', () => {
  for (const name of confFiles('bad')) {
    const base = name.slice(0, -'.conf'.length);
    test(name, () => {
      const { result, sources } = parseCorpusFile('bad', name);
      assert.equal(result.file, null, 'a bad file must not parse');
      assert.ok(result.diagnostics.some((d) => d.severity === 'error' && d.location));
      golden(`bad/${base}.err.txt`, formatDiagnostics(result.diagnostics, sources));
    });
  }
});

// ---- exact locations ----

function parseOk(text: string, file = 'loc.conf'): readonly Node[] {
  const result = parseConfigText(text, file);
  assert.ok(result.file, JSON.stringify(result.diagnostics));
  return result.file.body;
}

function statement(node: Node | undefined): StatementNode {
  assert.ok(node && node.type === 'Statement', `expected a statement, got ${JSON.stringify(node)}`);
  return node;
}

function value(v: ValueNode | undefined): ValueNode {
  assert.ok(v);
  return v;
}

const at = (file: string, line: number, column: number): Location => ({ file, line, column });

describe('grammar locations', () => {
  test('statements and values point at their first character (1-based)', () => {
    const [first, second] = parseOk('first a "b";\n  second\n\t(x, y) <<EOT\nbody\nEOT;\n');
    const s1 = statement(first);
    assert.deepEqual(s1.location, at('loc.conf', 1, 1));
    assert.deepEqual(value(s1.values[0]).location, at('loc.conf', 1, 7));
    assert.deepEqual(value(s1.values[1]).location, at('loc.conf', 1, 9));
    const s2 = statement(second);
    assert.deepEqual(s2.location, at('loc.conf', 2, 3));
    const list = value(s2.values[0]);
    assert.deepEqual(list.location, at('loc.conf', 3, 2));
    assert.ok(list.type === 'List');
    assert.deepEqual(value(list.items[1]).location, at('loc.conf', 3, 6));
    assert.deepEqual(value(s2.values[1]).location, at('loc.conf', 3, 9));
  });

  test('nested statements and includes keep their own lines', () => {
    const [block] = parseOk('block tag {\n    inner;\n    #include "x.conf"\n}\nafter;');
    const b = statement(block);
    assert.deepEqual(statement(b.block?.[0]).location, at('loc.conf', 2, 5));
    assert.deepEqual(b.block?.[1]?.location, at('loc.conf', 3, 5));
  });

  test('a concatenated string is located at its first piece', () => {
    const [s] = parseOk('s\n  "a" /* c */\n  "b";');
    assert.deepEqual(value(statement(s).values[0]).location, at('loc.conf', 2, 3));
  });

  test('#line N renumbers the following line, keeping the file', () => {
    const [a, b, c] = parseOk('a;\n#line 100\nb;\n\n  c;');
    assert.deepEqual(statement(a).location, at('loc.conf', 1, 1));
    assert.deepEqual(statement(b).location, at('loc.conf', 100, 1));
    assert.deepEqual(statement(c).location, at('loc.conf', 102, 3));
  });

  test('#line N "F" and # N "F" rename the file too, and later directives win', () => {
    const [a, b, c] = parseOk('#line 10 "gen.conf"\na;\n# 20 "cpp.conf" 1\n\nb x\n#line 5\n  y;\nc;');
    assert.deepEqual(statement(a).location, at('gen.conf', 10, 1));
    const sb = statement(b);
    assert.deepEqual(sb.location, at('cpp.conf', 21, 1));
    assert.deepEqual(value(sb.values[0]).location, at('cpp.conf', 21, 3));
    assert.equal(value(sb.values[1]).location.line, 5);
    assert.equal(statement(c).location.line, 6);
  });

  test('#line N without a file keeps the file named by an earlier directive', () => {
    const [a] = parseOk('#line 10 "gen.conf"\n#line 20\na;');
    assert.deepEqual(statement(a).location, at('gen.conf', 20, 1));
  });

  test('a plain "# 2 items" comment does not renumber', () => {
    const [a] = parseOk('# 2 items\na;');
    assert.deepEqual(statement(a).location, at('loc.conf', 2, 1));
  });

  test('syntax errors and warnings are located after #line too', () => {
    const bad = parseConfigText('ok;\n#line 40 "gen.conf"\n\nbroken value\n', 'loc.conf');
    assert.equal(bad.file, null);
    assert.deepEqual(bad.diagnostics[0]?.location, at('gen.conf', 42, 1));
    const warned = parseConfigText('#line 7\nw "ab\\qc";', 'loc.conf');
    assert.deepEqual(warned.diagnostics[0]?.location, at('loc.conf', 7, 6));
  });

  test('unterminated comments and here-documents are reported at their opener', () => {
    assert.deepEqual(parseConfigText('a "x', 'loc.conf').diagnostics[0]?.location, at('loc.conf', 1, 5));
    assert.deepEqual(parseConfigText('a;\n /* x\n\n', 'loc.conf').diagnostics[0]?.location, at('loc.conf', 2, 2));
    assert.deepEqual(parseConfigText('a <<-EOT\nx\n', 'loc.conf').diagnostics[0]?.location, at('loc.conf', 1, 3));
  });
});
