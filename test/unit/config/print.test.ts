// The printer's canonical text, escapes, and the cases where it must change a value's
// form (or give up) to keep grecs from reading the text differently.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Location, Node, ValueNode } from '../../../src/config/ast.js';
import { parseConfigText } from '../../../src/config/parse.js';
import { isBareWord, printTree, printValue, quote } from '../../../src/config/print.js';
import { stripLocations } from '../../helpers/ast.js';

const L: Location = { file: 'gen', line: 1, column: 1 };
const word = (value: string): ValueNode => ({ type: 'Word', value, location: L });
const str = (value: string): ValueNode => ({ type: 'String', value, location: L });
const doc = (value: string): ValueNode => ({ type: 'HereDoc', value, location: L });
const list = (...items: ValueNode[]): ValueNode => ({ type: 'List', items, location: L });
const stmt = (name: string, values: ValueNode[], block?: Node[]): Node =>
  block === undefined ? { type: 'Statement', name, values, location: L } : { type: 'Statement', name, values, block, location: L };

function reparse(text: string): unknown {
  const result = parseConfigText(text, 'printed.conf');
  assert.deepEqual(result.diagnostics, [], text);
  assert.ok(result.file, text);
  return stripLocations(result.file.body);
}

describe('printTree', () => {
  test('canonical layout: one statement per line, 4-space indentation, lists with ", "', () => {
    const tree = [
      stmt('pidfile', [word('/var/run/pies.pid')]),
      stmt('component', [word('web')], [
        stmt('flags', [list(word('a'), list(), list(word('b'), str('c d')))]),
        stmt('env', [], [stmt('clear', [])]),
        stmt('empty', [str('tag')], []),
      ]),
      { type: 'Include', once: false, system: false, target: 'x.conf', location: L },
      { type: 'Include', once: true, system: true, target: 'sys.conf', location: L },
    ] satisfies Node[];
    assert.equal(
      printTree(tree),
      [
        'pidfile /var/run/pies.pid;',
        'component web {',
        '    flags (a, (), (b, "c d"));',
        '    env {',
        '        clear;',
        '    }',
        '    empty "tag" {}',
        '}',
        '#include "x.conf"',
        '#include_once <sys.conf>',
        '',
      ].join('\n'),
    );
  });

  test('every escape, and other control characters as \\xHH', () => {
    assert.equal(quote('\\"\n\t\r\x07\b\f\v'), '"\\\\\\"\\n\\t\\r\\a\\b\\f\\v"');
    assert.equal(quote('\0\x1b\x7fé'), '"\\x00\\x1b\\x7fé"');
  });

  test('words print bare only when they read back as one word', () => {
    for (const w of ['inet://0.0.0.0:1', '10.0.0.0/8', '/etc/x/*.conf', 'a/*b', '*', '-']) assert.equal(printValue(word(w)), w);
    for (const w of ['', '//x', '**', 'a b', 'a#b', 'a;', '/*x']) {
      assert.equal(isBareWord(w), false, w);
      assert.equal(printValue(word(w)), quote(w));
    }
  });

  test('here-documents print as quoted strings', () => {
    assert.equal(printValue(doc('line\n')), '"line\\n"');
  });

  test('two neighbouring strings are kept apart by a here-document or a bare word', () => {
    assert.deepEqual(reparse(printTree([stmt('s', [doc('doc\n'), str('str')])])), [
      { type: 'Statement', name: 's', values: [{ type: 'HereDoc', value: 'doc\n' }, { type: 'String', value: 'str' }] },
    ]);
    assert.equal(printTree([stmt('s', [str('a'), str('b')])]), 's "a" b;\n');
    assert.equal(printTree([stmt('s', [str('a b'), str(''), word('w')])]), 's "a b" <<EOT\nEOT\n    w;\n');
    assert.equal(printTree([stmt('s', [str('x'), doc('y\n')], [])]), 's "x" <<EOT\ny\nEOT\n    {}\n');
  });

  test('a value without a final newline becomes a here-document whose last line is joined away', () => {
    const text = printTree([stmt('s', [str('a b'), str('c\nd \\')])]);
    assert.equal(text, 's "a b" <<EOT\nc\nd \\\\\\\nEOT;\n');
    assert.deepEqual(reparse(text), [{ type: 'Statement', name: 's', values: [{ type: 'String', value: 'a b' }, { type: 'HereDoc', value: 'c\nd \\' }] }]);
    // A parsed here-document can end that way too, and must still print next to a string
    // (the string takes the here-document form: only one of the two can have it).
    const parsed = parseConfigText('s <<EOT\nfoo\\\nEOT\n"x b";', 'in.conf').file;
    assert.ok(parsed);
    assert.deepEqual(reparse(printTree(parsed.body)), [
      { type: 'Statement', name: 's', values: [{ type: 'String', value: 'foo' }, { type: 'HereDoc', value: 'x b' }] },
    ]);
  });

  test('here-document bodies escape what would end them or be taken as directives', () => {
    const value = 'EOT\nEOT ;\n#line 5\n  #include x\n\\ back\\\n\ttab\n';
    const text = printTree([stmt('s', [str('a b'), str(value)])]);
    assert.deepEqual(reparse(text), [{ type: 'Statement', name: 's', values: [{ type: 'String', value: 'a b' }, { type: 'HereDoc', value }] }]);
  });

  test('what grecs cannot express throws instead of printing something else', () => {
    assert.throws(() => printTree([stmt('not.ident', [])]), /not an identifier/);
    assert.throws(() => printTree([{ type: 'Include', once: false, system: true, target: 'a>b', location: L }]), RangeError);
    assert.throws(() => printTree([{ type: 'Include', once: false, system: false, target: '"a b"', location: L }]), RangeError);
  });

  test('an include target holding a quote is written bare', () => {
    const text = printTree([{ type: 'Include', once: false, system: false, target: 'a"b', location: L }]);
    assert.equal(text, '#include a"b\n');
    assert.deepEqual(reparse(text), [{ type: 'Include', once: false, system: false, target: 'a"b' }]);
  });
});
