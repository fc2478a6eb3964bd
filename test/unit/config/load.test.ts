// config/load.ts against real files in a temp dir: include search order, wildcards,
// include_once, loops, size limits, and diagnostics that name the right file and line.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Node } from '../../../src/config/ast.js';
import { formatDiagnostics, formatLocation, type Diagnostic } from '../../../src/config/diagnostics.js';
import { loadTree, loadTreeFromText, type LoadedTree } from '../../../src/config/load.js';
import { globToRegExp } from '../../../src/config/glob.js';

type Shape = string | [string, Shape[]];

// Write `files` (relative path → text; a trailing `/` makes a directory) under a fresh temp dir.
async function tree(t: TestContext, files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tpies-load-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    const abs = path.join(root, name);
    if (name.endsWith('/')) {
      await mkdir(abs, { recursive: true });
      continue;
    }
    await mkdir(path.dirname(abs), { recursive: true });
    await writeFile(abs, text);
  }
  return root;
}

// Statements as `name value…`, blocks as [head, children]: the structure without locations.
function shape(nodes: readonly Node[]): Shape[] {
  return nodes.map((node) => {
    if (node.type === 'Include') return `#include ${node.target}`;
    const head = [node.name, ...node.values.map((v) => (v.type === 'List' ? '(…)' : v.value))].join(' ');
    return node.block ? [head, shape(node.block)] : head;
  });
}

function only(diagnostics: readonly Diagnostic[], rule: string): Diagnostic {
  const found = diagnostics.filter((d) => d.rule === rule);
  assert.equal(found.length, 1, `expected one ${rule} diagnostic, got ${JSON.stringify(diagnostics)}`);
  return found[0]!;
}

function errors(loaded: LoadedTree): Diagnostic[] {
  return loaded.diagnostics.filter((d) => d.severity === 'error');
}

// Run `fn` with the cwd at `dir`; node:test runs this file's tests one at a time.
async function inDir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const previous = process.cwd();
  process.chdir(dir);
  try {
    return await fn();
  } finally {
    process.chdir(previous);
  }
}

test('includes inside a component block are spliced in place, recursively', async (t) => {
  const root = await tree(t, {
    'main.conf': 'pidfile /run/x.pid;\ncomponent a {\n  #include "common.conf"\n  command "/bin/a";\n}\n',
    'common.conf': 'mode respawn;\n#include "deeper/env.conf"\n',
    // Relative to deeper/, the directory of the file that includes it.
    'deeper/env.conf': 'env "X=1";\n#include more.conf\n',
    'deeper/more.conf': 'chdir /tmp;\n',
  });
  const loaded = await loadTree(path.join(root, 'main.conf'));
  assert.deepEqual(loaded.diagnostics, []);
  assert.deepEqual(shape(loaded.body), [
    'pidfile /run/x.pid',
    ['component a', ['mode respawn', 'env X=1', 'chdir /tmp', 'command /bin/a']],
  ]);
  const block = (loaded.body[1] as Extract<Node, { type: 'Statement' }>).block!;
  // The temp dir is outside the cwd, so included files are named by absolute path.
  assert.equal(formatLocation(block[0]!.location), `${path.join(root, 'common.conf')}:1:1`);
  assert.equal(formatLocation(block[2]!.location), `${path.join(root, 'deeper/more.conf')}:1:1`);
  assert.equal(formatLocation(block[3]!.location), `${path.join(root, 'main.conf')}:4:3`);
});

test('a relative name is looked up next to the including file first, then in each -I dir in order', async (t) => {
  const root = await tree(t, {
    'etc/main.conf': '#include "x.conf"\n#include y.conf\n',
    'etc/x.conf': 'from local-x;\n',
    'inc1/x.conf': 'from inc1-x;\n',
    'inc1/y.conf': 'from inc1-y;\n',
    'inc2/y.conf': 'from inc2-y;\n',
  });
  const main = path.join(root, 'etc/main.conf');
  const withDirs = await loadTree(main, { includeDirs: [path.join(root, 'inc1'), path.join(root, 'inc2')] });
  assert.deepEqual(withDirs.diagnostics, []);
  assert.deepEqual(shape(withDirs.body), ['from local-x', 'from inc1-y']);

  const reversed = await loadTree(main, { includeDirs: [path.join(root, 'inc2'), path.join(root, 'inc1')] });
  assert.deepEqual(shape(reversed.body), ['from local-x', 'from inc2-y']);

  const without = await loadTree(main);
  assert.deepEqual(shape(without.body), ['from local-x']);
  const missing = only(without.diagnostics, 'include');
  assert.equal(missing.message, `cannot find include file "y.conf" (searched ${path.join(root, 'etc')})`);
});

test('an -I dir given relative is taken from the cwd, not from the including file', async (t) => {
  const root = await tree(t, {
    'etc/main.conf': '#include <y.conf>\n',
    'inc/y.conf': 'from inc;\n',
    'etc/inc/y.conf': 'from etc-inc;\n',
  });
  const loaded = await inDir(root, () => loadTree('etc/main.conf', { includeDirs: ['inc'] }));
  assert.deepEqual(loaded.diagnostics, []);
  assert.deepEqual(shape(loaded.body), ['from inc']);
});

test('#include <FILE> searches only the include dirs', async (t) => {
  const root = await tree(t, {
    'etc/main.conf': '#include <sys.conf>\n#include <local-only.conf>\n',
    'etc/sys.conf': 'from local;\n',
    'etc/local-only.conf': 'from local-only;\n',
    'inc/sys.conf': 'from inc;\n',
  });
  const main = path.join(root, 'etc/main.conf');
  const loaded = await loadTree(main, { includeDirs: [path.join(root, 'inc')] });
  assert.deepEqual(shape(loaded.body), ['from inc']);
  const missing = only(loaded.diagnostics, 'include');
  assert.equal(missing.message, `cannot find include file <local-only.conf> (searched ${path.join(root, 'inc')})`);
  assert.deepEqual(missing.location, { file: main, line: 2, column: 1 });

  const noDirs = await loadTree(main);
  assert.deepEqual(shape(noDirs.body), []);
  assert.deepEqual(
    noDirs.diagnostics.map((d) => d.message),
    ['cannot find include file <sys.conf>: no include directories given (-I)', 'cannot find include file <local-only.conf>: no include directories given (-I)'],
  );
});

test('a wildcard expands sorted by name, leaving out dotfiles, other suffixes and directories', async (t) => {
  const root = await tree(t, {
    'main.conf': 'first;\n#include "conf.d/*.conf"\nlast;\n',
    'conf.d/b.conf': 'b;\n',
    'conf.d/a.conf': 'a;\n',
    'conf.d/c.conf': 'c;\n',
    'conf.d/10.conf': 'ten;\n',
    'conf.d/B.conf': 'upper-b;\n',
    'conf.d/.hidden.conf': 'hidden;\n',
    'conf.d/notes.txt': 'txt;\n',
    'conf.d/sub.conf/': '',
  });
  const loaded = await loadTree(path.join(root, 'main.conf'));
  assert.deepEqual(loaded.diagnostics, []);
  assert.deepEqual(shape(loaded.body), ['first', 'ten', 'upper-b', 'a', 'b', 'c', 'last']);
  assert.deepEqual(
    loaded.files.map((f) => path.relative(root, f)),
    ['main.conf', 'conf.d/10.conf', 'conf.d/B.conf', 'conf.d/a.conf', 'conf.d/b.conf', 'conf.d/c.conf'],
  );
});

test('wildcards with ? and [...] in an include dir, and zero matches are silent', async (t) => {
  const root = await tree(t, {
    'etc/main.conf': '#include <d/?.conf>\n#include "d/[!a]x.conf"\n#include d/*.none\n#include "nodir/*.conf"\n',
    'inc/d/a.conf': 'a;\n',
    'inc/d/ab.conf': 'ab;\n',
    'inc/d/z.conf': 'z;\n',
    'inc/d/ax.conf': 'ax;\n',
    'inc/d/bx.conf': 'bx;\n',
  });
  const loaded = await loadTree(path.join(root, 'etc/main.conf'), { includeDirs: [path.join(root, 'inc')] });
  assert.deepEqual(loaded.diagnostics, []);
  assert.deepEqual(shape(loaded.body), ['a', 'z', 'bx']);
});

test('a wildcard uses the first search dir that has the pattern directory, not a union', async (t) => {
  const root = await tree(t, {
    'etc/main.conf': '#include "conf.d/*.conf"\n',
    'etc/conf.d/': '',
    'inc/conf.d/x.conf': 'x;\n',
  });
  const loaded = await loadTree(path.join(root, 'etc/main.conf'), { includeDirs: [path.join(root, 'inc')] });
  assert.deepEqual(loaded.diagnostics, []);
  assert.deepEqual(shape(loaded.body), []);
  await rm(path.join(root, 'etc/conf.d'), { recursive: true });
  const fallback = await loadTree(path.join(root, 'etc/main.conf'), { includeDirs: [path.join(root, 'inc')] });
  assert.deepEqual(shape(fallback.body), ['x']);
});

test('globToRegExp follows glob(3) for one path component', () => {
  const cases: [string, string[], string[]][] = [
    ['*.conf', ['a.conf', 'x.y.conf', '-.conf'], ['.a.conf', '.conf', 'a.confx', 'a/b.conf']],
    ['.*', ['.a', '.'], ['a']],
    ['[!a]?', ['bc', 'b.'], ['ac', 'b', '/c']],
    ['[]a]x', [']x', 'ax'], ['bx']],
    ['[a-c]-*', ['b-1', 'c-'], ['d-1', 'b1']],
    ['x[', ['x['], ['x']],
    ['\\*', ['*'], ['a']],
    ['a.(b)+', ['a.(b)+'], ['ax(b)+', 'a.bb']],
  ];
  for (const [glob, yes, no] of cases) {
    const re = globToRegExp(glob);
    for (const name of yes) assert.ok(re.test(name), `${glob} should match ${name}`);
    for (const name of no) assert.ok(!re.test(name), `${glob} should not match ${name}`);
  }
});

test('#include_once leaves out a file already included, by identity not by name', async (t) => {
  const root = await tree(t, {
    'main.conf': '#include common.conf\n#include_once common.conf\n#include_once link.conf\n#include_once other.conf\n#include common.conf\n',
    'common.conf': 'common;\n',
    'other.conf': 'other;\n',
  });
  await symlink(path.join(root, 'common.conf'), path.join(root, 'link.conf'));
  const loaded = await loadTree(path.join(root, 'main.conf'));
  assert.deepEqual(loaded.diagnostics, []);
  // Plain #include does include again; only the _once forms leave it out.
  assert.deepEqual(shape(loaded.body), ['common', 'other', 'common']);
  assert.deepEqual(loaded.files.map((f) => path.basename(f)), ['main.conf', 'common.conf', 'other.conf']);
});

test('#include_once of the main file or an ancestor is a no-op, not a loop', async (t) => {
  const root = await tree(t, {
    'main.conf': 'top;\n#include a.conf\n',
    'a.conf': 'a;\n#include_once main.conf\n#include_once a.conf\n',
  });
  const loaded = await loadTree(path.join(root, 'main.conf'));
  assert.deepEqual(loaded.diagnostics, []);
  assert.deepEqual(shape(loaded.body), ['top', 'a']);
});

test('a loop a -> b -> a is an error at the include that closes it, with the chain in notes', async (t) => {
  const root = await tree(t, {
    'main.conf': 'top;\n#include a.conf\nend;\n',
    'a.conf': 'in-a;\n\n  #include "b.conf"\n',
    'b.conf': 'in-b;\n#include a.conf\nafter;\n',
  });
  const loaded = await loadTree(path.join(root, 'main.conf'));
  const a = path.join(root, 'a.conf');
  const b = path.join(root, 'b.conf');
  const loop = only(loaded.diagnostics, 'include-loop');
  assert.equal(loaded.diagnostics.length, 1);
  assert.equal(loop.severity, 'error');
  assert.equal(loop.message, `recursive inclusion of ${a}`);
  assert.deepEqual(loop.location, { file: b, line: 2, column: 1 });
  assert.deepEqual(loop.notes, [
    { message: `include chain: ${a} -> ${b} -> ${a}` },
    { message: `${a} included from here`, location: { file: path.join(root, 'main.conf'), line: 2, column: 1 } },
    { message: `${b} included from here`, location: { file: a, line: 3, column: 3 } },
  ]);
  // Everything but the looping include is still loaded, once.
  assert.deepEqual(shape(loaded.body), ['top', 'in-a', 'in-b', 'after', 'end']);
});

test('a main file that includes itself is a loop located in the main file', async (t) => {
  const root = await tree(t, { 'a.conf': 'x;\n#include a.conf\n' });
  const loaded = await inDir(root, () => loadTree('a.conf'));
  const loop = only(loaded.diagnostics, 'include-loop');
  assert.equal(loop.message, 'recursive inclusion of a.conf');
  assert.deepEqual(loop.location, { file: 'a.conf', line: 2, column: 1 });
  assert.deepEqual(loop.notes, [{ message: 'include chain: a.conf -> a.conf' }, { message: 'a.conf is the main config file' }]);
});

test('a missing include is reported at file:line:col with the source line', async (t) => {
  const root = await tree(t, { 'etc/main.conf': 'component a {\n  command "/bin/a";\n    #include nope.conf\n}\n' });
  const loaded = await inDir(root, () => loadTree('etc/main.conf'));
  const missing = only(loaded.diagnostics, 'include');
  assert.deepEqual(missing.location, { file: 'etc/main.conf', line: 3, column: 5 });
  assert.deepEqual(shape(loaded.body), [['component a', ['command /bin/a']]]);
  assert.equal(
    formatDiagnostics(loaded.diagnostics, loaded.sources),
    [
      'etc/main.conf:3:5: error: cannot find include file "nope.conf" (searched etc) [include]',
      '  |',
      '3 |     #include nope.conf',
      '  |     ^',
      '1 error',
      '',
    ].join('\n'),
  );
});

test('files under the cwd are named relative to it, everywhere a name appears', async (t) => {
  const root = await tree(t, {
    'etc/tpies.conf': '#include conf.d/x.conf\n',
    'etc/conf.d/x.conf': 'x "\\q";\n',
  });
  const loaded = await inDir(root, () => loadTree('etc/tpies.conf'));
  // The unknown escape is a parse warning, kept and located in the included file.
  const warning = only(loaded.diagnostics, 'syntax');
  assert.equal(warning.severity, 'warning');
  assert.equal(warning.location?.file, path.join('etc', 'conf.d', 'x.conf'));
  assert.deepEqual([...loaded.sources.keys()], ['etc/tpies.conf', 'etc/conf.d/x.conf']);
  assert.equal(loaded.sources.get('etc/conf.d/x.conf'), 'x "\\q";\n');
  assert.deepEqual(loaded.files, [path.join(root, 'etc/tpies.conf'), path.join(root, 'etc/conf.d/x.conf')]);
});

test('a syntax error in one included file is located there and the other files still load', async (t) => {
  const root = await tree(t, {
    'main.conf': 'component a {\n  #include bad.conf\n  #include good.conf\n}\n#include missing.conf\n',
    'bad.conf': 'mode respawn;\ncommand "/bin/x" {\n',
    'good.conf': 'command "/bin/good";\n',
  });
  const loaded = await loadTree(path.join(root, 'main.conf'));
  const syntax = only(loaded.diagnostics, 'syntax');
  assert.equal(syntax.severity, 'error');
  assert.equal(syntax.location?.file, path.join(root, 'bad.conf'));
  assert.equal(syntax.location?.line, 3);
  only(loaded.diagnostics, 'include');
  assert.equal(errors(loaded).length, 2);
  assert.deepEqual(shape(loaded.body), [['component a', ['command /bin/good']]]);
  // The broken file is still listed, so a watcher notices when it is fixed.
  assert.deepEqual(loaded.files.map((f) => path.basename(f)), ['main.conf', 'bad.conf', 'good.conf']);
  assert.ok(loaded.sources.has(path.join(root, 'bad.conf')));
});

test('files lists the main file first, then every file read once, as absolute paths', async (t) => {
  const root = await tree(t, {
    'main.conf': '#include b.conf\n#include sub/a.conf\n#include b.conf\n#include gone.conf\n',
    'b.conf': 'b;\n',
    'sub/a.conf': '#include ../c.conf\n',
    'c.conf': 'c;\n',
  });
  const loaded = await inDir(root, () => loadTree('main.conf'));
  assert.deepEqual(loaded.files, ['main.conf', 'b.conf', 'sub/a.conf', 'c.conf'].map((f) => path.join(root, f)));
  assert.deepEqual(shape(loaded.body), ['b', 'c', 'b']);
});

test('an unreadable main file is one located-nowhere read error', async (t) => {
  const root = await tree(t, { 'dir.conf/': '' });
  const missing = await inDir(root, () => loadTree('nope.conf'));
  assert.deepEqual(missing.diagnostics, [
    { rule: 'read', severity: 'error', message: 'cannot read config nope.conf: no such file or directory', notes: [] },
  ]);
  assert.deepEqual(missing.body, []);
  assert.deepEqual(missing.files, []);

  const dir = await loadTree(path.join(root, 'dir.conf'));
  assert.equal(only(dir.diagnostics, 'read').message, `cannot read config ${path.join(root, 'dir.conf')}: illegal operation on a directory`);
});

test('an include that names a directory is a read error at the include', async (t) => {
  const root = await tree(t, { 'main.conf': '\n#include "conf.d"\n', 'conf.d/': '' });
  const loaded = await loadTree(path.join(root, 'main.conf'));
  const read = only(loaded.diagnostics, 'read');
  assert.match(read.message, /^cannot read include file .*conf\.d: /);
  assert.deepEqual(read.location, { file: path.join(root, 'main.conf'), line: 2, column: 1 });
});

test('files over maxFileBytes are refused, main or included', async (t) => {
  const root = await tree(t, {
    'main.conf': '#include big.conf\nsmall;\n',
    'big.conf': `big "${'x'.repeat(100)}";\n`,
  });
  const main = path.join(root, 'main.conf');
  const loaded = await loadTree(main, { maxFileBytes: 64 });
  const big = only(loaded.diagnostics, 'file-too-large');
  assert.equal(big.message, `${path.join(root, 'big.conf')} is too large (108 bytes; the limit is 64)`);
  assert.deepEqual(big.location, { file: main, line: 1, column: 1 });
  assert.deepEqual(shape(loaded.body), ['small']);

  const tiny = await loadTree(main, { maxFileBytes: 10 });
  const mainTooBig = only(tiny.diagnostics, 'file-too-large');
  assert.equal(mainTooBig.location, undefined);
  assert.deepEqual(tiny.body, []);

  const fine = await loadTree(main, { maxFileBytes: 108 });
  assert.deepEqual(fine.diagnostics, []);
  await assert.rejects(loadTree(main, { maxFileBytes: -1 }), TypeError);
});

test('loadTreeFromText resolves includes next to the named file and does not list it as read', async (t) => {
  const root = await tree(t, { 'etc/part.conf': 'part;\n', 'etc/main.conf': 'on-disk;\n' });
  const main = path.join(root, 'etc/main.conf');
  const loaded = await loadTreeFromText('in-memory;\n#include part.conf\n#include main.conf\n', main);
  assert.deepEqual(shape(loaded.body), ['in-memory', 'part']);
  // The name exists on disk, so including it from the in-memory text is still a loop.
  assert.equal(only(loaded.diagnostics, 'include-loop').location?.line, 3);
  assert.deepEqual(loaded.files, [path.join(root, 'etc/part.conf')]);
  assert.equal(loaded.sources.get(main), 'in-memory;\n#include part.conf\n#include main.conf\n');

  const broken = await loadTreeFromText('a {\n', '<control>');
  assert.equal(only(broken.diagnostics, 'syntax').location?.file, '<control>');
  assert.deepEqual(broken.files, []);
});
