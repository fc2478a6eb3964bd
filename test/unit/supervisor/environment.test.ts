// supervisor/environment.ts: every expansion form, escapes and literals, quote-aware command
// expansion, clear/keep/unset patterns, legacy append/prepend and the order of env layers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitCommandLine } from '../../../src/config/command-line.js';
import type { EnvOp } from '../../../src/config/model.js';
import { applyEnvOps, componentEnv, expandCommandLine, expandVariables, matchGlob } from '../../../src/supervisor/environment.js';

function expand(text: string, env: Record<string, string> = {}): { out: string; env: Record<string, string>; errors: string[] } {
  const errors: string[] = [];
  const copy = { ...env };
  const out = expandVariables(text, copy, { onError: (m) => errors.push(m) });
  return { out, env: copy, errors };
}

const ENV = { A: 'alpha', E: '', H: '/home/u' };

test('$V and ${V}; unset variables expand to nothing', () => {
  assert.equal(expand('$A/${A}x $H', ENV).out, 'alpha/alphax /home/u');
  assert.equal(expand('[$NOPE][${NOPE}]', ENV).out, '[][]');
  assert.equal(expand('$A_B.$A', ENV).out, '.alpha', 'a name is the longest [A-Za-z0-9_] run');
});

test('${V:-w} and ${V-w}: the colon makes empty count as unset', () => {
  assert.equal(expand('${A:-d} ${E:-d} ${U:-d}', ENV).out, 'alpha d d');
  assert.equal(expand('${A-d} [${E-d}] ${U-d}', ENV).out, 'alpha [] d');
});

test('${V:=w} and ${V=w} assign into the environment being built', () => {
  const r = expand('${U:=one} ${E:=two} ${A:=three}', ENV);
  assert.equal(r.out, 'one two alpha');
  assert.equal(r.env.U, 'one');
  assert.equal(r.env.E, 'two');
  assert.equal(r.env.A, 'alpha');
  const n = expand('[${E=x}] ${U=y}', ENV);
  assert.equal(n.out, '[] y');
  assert.equal(n.env.E, '');
  assert.equal(n.env.U, 'y');
});

test('${V:?w} and ${V?w} report and expand to nothing', () => {
  const r = expand('a${U:?is required}b ${E:?} ${A:?x}', ENV);
  assert.equal(r.out, 'ab  alpha');
  assert.deepEqual(r.errors, ['U: is required', 'E: parameter null or not set']);
  const n = expand('${E?x}|${U?}', ENV);
  assert.equal(n.out, '|');
  assert.deepEqual(n.errors, ['U: parameter not set']);
  assert.doesNotThrow(() => expandVariables('${U:?x}', {}), 'without onError the report is dropped');
});

test('${V:+w} and ${V+w} give w only when the variable is there', () => {
  assert.equal(expand('[${A:+y}][${E:+y}][${U:+y}]', ENV).out, '[y][][]');
  assert.equal(expand('[${A+y}][${E+y}][${U+y}]', ENV).out, '[y][y][]');
  assert.equal(expand('${PATH}${PATH:+:}/sbin', { PATH: '/bin' }).out, '/bin:/sbin');
  assert.equal(expand('${PATH}${PATH:+:}/sbin', {}).out, '/sbin');
});

test('words are expanded, nested references included, and only when used', () => {
  assert.equal(expand('${U:-$H/lib}', ENV).out, '/home/u/lib');
  assert.equal(expand('${U:-${V:-${A}}}', ENV).out, 'alpha');
  const lazy = expand('${A:-${X:=set}}', ENV);
  assert.equal(lazy.out, 'alpha');
  assert.equal(lazy.env.X, undefined, 'the unused word has no side effects');
  const used = expand('${U:-${X:=set}}', ENV);
  assert.equal(used.out, 'set');
  assert.equal(used.env.X, 'set');
  assert.equal(expand('${U:-a\\}b}', ENV).out, 'a}b', '\\} inside a word');
});

test('escapes: \\$ and \\\\ stand for themselves, other backslashes stay', () => {
  assert.equal(expand('\\$A \\${A} \\\\$A a\\nb', ENV).out, '$A ${A} \\alpha a\\nb');
});

test('unknown syntax is left as written', () => {
  for (const text of ['$(date)', '$((1+2))', '${#A}', '${A%x}', '${A/a/b}', '${}', '${1}', '$1', '$$', '$', 'a$', '${A', '${A:-x', '$-', '100$ ok']) {
    assert.equal(expand(text, ENV).out, text, text);
  }
});

test('a "__proto__" variable is an ordinary variable', () => {
  const env: Record<string, string> = {};
  expandVariables('${__proto__:=x}', env);
  assert.equal(Object.getPrototypeOf(env), Object.prototype);
  assert.deepEqual(Object.keys(env), ['__proto__']);
  const out = applyEnvOps({}, [{ op: 'set', name: '__proto__', value: 'y' }]);
  assert.equal(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, 'y');
});

test('deep nesting is reported, not a stack overflow', () => {
  const deep = `${'${U:-'.repeat(200)}x${'}'.repeat(200)}`;
  const r = expand(deep);
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]!, /nested more than/);
});

test('expandCommandLine: values never add quotes or words; quoting works as in sh', () => {
  const env = { X: 'a b', Q: `it's "q" \\ $Y`, E: '', Y: 'why' };
  const argv = (cmd: string): readonly string[] => {
    const r = splitCommandLine(expandCommandLine(cmd, { ...env }));
    assert.ok('argv' in r, JSON.stringify(r));
    return r.argv;
  };
  assert.deepEqual(argv('prog $X "$X" \'$X\''), ['prog', 'a', 'b', 'a b', '$X']);
  assert.deepEqual(argv('prog $Q'), ['prog', 'it\'s', '"q"', '\\', '$Y']);
  assert.deepEqual(argv('prog "$Q"'), ['prog', `it's "q" \\ $Y`]);
  assert.deepEqual(argv('prog $E "$E" x$E'), ['prog', '', 'x'], 'an empty unquoted value vanishes');
  assert.deepEqual(argv('prog pre$X post'), ['prog', 'prea', 'b', 'post']);
  assert.deepEqual(argv('prog ${U:-"d e"} ${U:-d e} "${U:-d e}"'), ['prog', 'd e', 'd', 'e', 'd e']);
  assert.deepEqual(argv('prog ${U:-\'}\'}'), ['prog', '}'], 'a quoted } does not close the reference');
  assert.deepEqual(argv('prog \\$X "\\$X"'), ['prog', '$X', '$X']);
  assert.deepEqual(argv('prog ${U:=$X}'), ['prog', 'a', 'b']);
  const errors: string[] = [];
  expandCommandLine('prog ${U:?needed}', {}, { onError: (m) => errors.push(m) });
  assert.deepEqual(errors, ['U: needed']);
});

test('matchGlob: *, ?, classes, negation, escapes; whole names only', () => {
  assert.ok(matchGlob('LC_*', 'LC_ALL'));
  assert.ok(!matchGlob('LC_*', 'XLC_ALL'));
  assert.ok(matchGlob('A?C', 'ABC'));
  assert.ok(!matchGlob('A?C', 'AC'));
  assert.ok(matchGlob('[AB]1', 'B1'));
  assert.ok(matchGlob('[A-C]1', 'B1'));
  assert.ok(!matchGlob('[!A-C]1', 'B1'));
  assert.ok(matchGlob('[^A-C]1', 'D1'));
  assert.ok(matchGlob('[]]', ']'));
  assert.ok(matchGlob('a\\*', 'a*'));
  assert.ok(!matchGlob('a\\*', 'ab'));
  assert.ok(matchGlob('[x', '[x'), 'an unclosed [ is literal');
  assert.ok(matchGlob('a.b', 'a.b'));
  assert.ok(!matchGlob('a.b', 'axb'), 'regexp characters are literal');
  assert.ok(matchGlob('(x)+', '(x)+'));
});

const BASE = { HOME: '/root', USER: 'root', PATH: '/usr/bin:/bin', LC_ALL: 'C', LC_TIME: 'C', LANG: 'en', TERM: 'xterm' };

test('clear removes everything; keep implies clear and keeps glob matches', () => {
  assert.deepEqual(applyEnvOps(BASE, [{ op: 'clear' }]), {});
  assert.deepEqual(applyEnvOps(BASE, [{ op: 'keep', pattern: 'HOME' }, { op: 'keep', pattern: 'LC_*' }]), { HOME: '/root', LC_ALL: 'C', LC_TIME: 'C' });
  assert.deepEqual(applyEnvOps(BASE, [{ op: 'clear' }, { op: 'keep', pattern: 'PATH' }]), { PATH: '/usr/bin:/bin' });
});

test('keep NAME=VALUE keeps the variable only when it has that value', () => {
  assert.deepEqual(applyEnvOps(BASE, [{ op: 'keep', pattern: 'LANG', value: 'en' }, { op: 'keep', pattern: 'TERM', value: 'vt100' }]), { LANG: 'en' });
  assert.deepEqual(applyEnvOps(BASE, [{ op: 'keep', pattern: 'LC_*', value: 'C' }]), {}, 'NAME=VALUE is not a glob');
});

test('clear/keep act first wherever they appear', () => {
  const ops: EnvOp[] = [{ op: 'set', name: 'NEW', value: '1' }, { op: 'clear' }, { op: 'keep', pattern: 'HOME' }];
  assert.deepEqual(applyEnvOps(BASE, ops), { HOME: '/root', NEW: '1' });
});

test('set expands against the environment being built, in order', () => {
  const ops: EnvOp[] = [
    { op: 'set', name: 'MYLIB', value: '$HOME/lib' },
    { op: 'set', name: 'LD_LIBRARY_PATH', value: '$MYLIB${LD_LIBRARY_PATH:+:}$LD_LIBRARY_PATH' },
    { op: 'set', name: 'HOME', value: '/srv' },
    { op: 'set', name: 'LIT', value: '\\$HOME' },
  ];
  const env = applyEnvOps(BASE, ops);
  assert.equal(env.MYLIB, '/root/lib');
  assert.equal(env.LD_LIBRARY_PATH, '/root/lib');
  assert.equal(env.HOME, '/srv');
  assert.equal(env.LIT, '$HOME');
});

test('set does not change the base object', () => {
  const base = { ...BASE };
  applyEnvOps(base, [{ op: 'set', name: 'HOME', value: 'x' }, { op: 'unset', pattern: '*' }]);
  assert.deepEqual(base, BASE);
});

test('unset PATTERN and unset NAME=VALUE', () => {
  assert.deepEqual(Object.keys(applyEnvOps(BASE, [{ op: 'unset', pattern: 'LC_*' }, { op: 'unset', pattern: 'T?RM' }])), ['HOME', 'USER', 'PATH', 'LANG']);
  assert.equal(applyEnvOps(BASE, [{ op: 'unset', pattern: 'LANG', value: 'en' }]).LANG, undefined);
  assert.equal(applyEnvOps(BASE, [{ op: 'unset', pattern: 'LANG', value: 'de' }]).LANG, 'en');
  assert.equal(applyEnvOps(BASE, [{ op: 'unset', pattern: 'NOPE' }]).HOME, '/root');
});

test('eval expands for side effects only', () => {
  const errors: string[] = [];
  const env = applyEnvOps(BASE, [{ op: 'eval', expression: '${PORT:=8080}${HOME:=/x}' }, { op: 'eval', expression: '${NEED:?set NEED}' }], {
    onError: (m) => errors.push(m),
  });
  assert.equal(env.PORT, '8080');
  assert.equal(env.HOME, '/root');
  assert.deepEqual(errors, ['NEED: set NEED']);
});

test('legacy NAME+=VAL appends; the leading punctuation goes when NAME was unset or empty', () => {
  assert.equal(applyEnvOps(BASE, [{ op: 'append', name: 'PATH', value: ':/sbin' }]).PATH, '/usr/bin:/bin:/sbin');
  assert.equal(applyEnvOps({}, [{ op: 'append', name: 'PATH', value: ':/sbin' }]).PATH, '/sbin');
  assert.equal(applyEnvOps({ PATH: '' }, [{ op: 'append', name: 'PATH', value: ':/sbin' }]).PATH, '/sbin');
  assert.equal(applyEnvOps({}, [{ op: 'append', name: 'X', value: 'abc' }]).X, 'abc', 'only punctuation is dropped');
  assert.equal(applyEnvOps({}, [{ op: 'append', name: 'X', value: '$HOME' }]).X, '', 'the value is expanded first');
});

test('legacy NAME=+VAL prepends; the trailing punctuation goes when NAME was unset', () => {
  assert.equal(applyEnvOps(BASE, [{ op: 'prepend', name: 'PATH', value: '/sbin:' }]).PATH, '/sbin:/usr/bin:/bin');
  assert.equal(applyEnvOps({}, [{ op: 'prepend', name: 'PATH', value: '/sbin:' }]).PATH, '/sbin');
  assert.equal(applyEnvOps({}, [{ op: 'prepend', name: 'X', value: 'a;b' }]).X, 'a;b');
});

test('legacy append/prepend retain their variable through clear', () => {
  const ops: EnvOp[] = [{ op: 'clear' }, { op: 'keep', pattern: 'HOME' }, { op: 'append', name: 'PATH', value: ':/sbin' }, { op: 'prepend', name: 'LANG', value: 'de:' }];
  assert.deepEqual(applyEnvOps(BASE, ops), { HOME: '/root', PATH: '/usr/bin:/bin:/sbin', LANG: 'de:en' });
});

test('componentEnv applies global, master and component layers in that order', () => {
  const global: EnvOp[] = [{ op: 'set', name: 'WHO', value: 'global' }, { op: 'set', name: 'G', value: '1' }];
  const master: EnvOp[] = [{ op: 'set', name: 'WHO', value: '${WHO}>master' }, { op: 'unset', pattern: 'TERM' }];
  const own: EnvOp[] = [{ op: 'set', name: 'WHO', value: '${WHO}>own' }, { op: 'keep', pattern: 'WHO' }, { op: 'keep', pattern: 'G' }];
  const env = componentEnv({ ...BASE, UNDEF: undefined }, [global, undefined, master, own]);
  assert.deepEqual(env, { WHO: 'global>master>own', G: '1' });
  const noOwn = componentEnv({ ...BASE, UNDEF: undefined }, [global, master, undefined]);
  assert.equal(noOwn.TERM, undefined);
  assert.equal(noOwn.WHO, 'global>master');
  assert.ok(!('UNDEF' in noOwn), 'undefined process.env values are dropped');
  assert.deepEqual(componentEnv({ A: '1' }, []), { A: '1' });
});
