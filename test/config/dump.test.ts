// `dumpConfig` round trips: for every ok golden config, every etc/**/*.conf and random
// valid configs, dump → load gives the same model (locations and `files` aside), and the
// dump is canonical (dumping the reloaded model prints the same text).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { dumpConfig } from '../../src/config/dump.js';
import { formatDiagnostics, loadConfig, type LoadConfigOptions } from '../../src/config/index.js';
import type { Config } from '../../src/config/model.js';
import { modelForComparison } from '../helpers/model-json.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GOLDEN_OK = join(ROOT, 'test/config/golden/ok');
const SERVICES = join(ROOT, 'test/config/golden/services');
const TMP = mkdtempSync(join(tmpdir(), 'tpies-dump-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

// The comparison is exact: what the model keeps as written (SocketAddress.url,
// AclAddress.text) is dumped as written, and legacy env append/prepend operations are
// dumped in the legacy one-line form, so they come back as the same operations.

async function mustLoad(file: string, options: LoadConfigOptions): Promise<Config> {
  const result = await loadConfig(file, options);
  assert.ok(result.config, `${file} must load:\n${formatDiagnostics(result.diagnostics, result.sources)}`);
  return result.config;
}

let serial = 0;
// Dump `config`, load the dump back (pies syntax) and return both texts and models.
async function roundTrip(config: Config, servicesFile?: string): Promise<{ text: string; again: Config; textAgain: string }> {
  const text = dumpConfig(config);
  const file = join(TMP, `dump-${serial++}.conf`);
  writeFileSync(file, text);
  const result = await loadConfig(file, servicesFile !== undefined ? { servicesFile } : {});
  assert.ok(result.config, `the dump must load again:\n${formatDiagnostics(result.diagnostics, result.sources)}\n--- dump ---\n${text}`);
  assert.deepEqual(result.diagnostics, [], `the dump loads without warnings:\n${formatDiagnostics(result.diagnostics, result.sources)}`);
  return { text, again: result.config, textAgain: dumpConfig(result.config) };
}

function confFilesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((f) => f.endsWith('.conf'))
    .sort()
    .map((f) => join(dir, f));
}

const inputs: Array<{ name: string; file: string; options: LoadConfigOptions }> = [
  ...confFilesUnder(GOLDEN_OK).map((file) => ({ name: `golden/ok/${basename(file)}`, file, options: { servicesFile: SERVICES } })),
  ...confFilesUnder(join(ROOT, 'etc')).map((file) => ({
    name: file.slice(ROOT.length),
    file,
    options: basename(file) === 'inetd.conf' ? { syntax: 'inetd' as const } : {},
  })),
];

describe('dumpConfig round trip on files', () => {
  test('there is something to round-trip', () => {
    assert.ok(inputs.some((i) => i.name.startsWith('etc/')), 'etc/ has .conf files');
    assert.ok(inputs.filter((i) => i.name.startsWith('golden/')).length >= 10);
  });

  for (const { name, file, options } of inputs) {
    test(`${name}: dump → load gives exactly the same model, and the dump is canonical`, async () => {
      const config = await mustLoad(file, options);
      const { text, again, textAgain } = await roundTrip(config, options.servicesFile);
      assert.equal(textAgain, text, 'the dump is canonical: dumping the reloaded model prints the same text');
      assert.deepEqual(modelForComparison(again), modelForComparison(config), text);
    });
  }
});

// Exact single cases.
describe('dumpConfig edge cases', () => {
  async function roundTripText(source: string): Promise<void> {
    const file = join(TMP, `edge-${serial++}.conf`);
    writeFileSync(file, source);
    const config = await mustLoad(file, {});
    const { text, again } = await roundTrip(config);
    assert.deepEqual(modelForComparison(again), modelForComparison(config), text);
  }
  const component = (body: string): string => `component a {\n    command /bin/true;\n${body}\n}\n`;

  test('hex and octal integers, zero and fractional seconds', () =>
    roundTripText(`shutdown-timeout 0;\n${component('    max-instances 0x10;\n    max-rate 010;\n    umask 7;\n    respawn {\n        initial-delay 0.001;\n        window 0.5;\n    }')}`));

  test('empty lists, blocks and ACLs', () =>
    roundTripText(`defacl e {\n}\n${component('    group ();\n    flags ();\n    env {\n    }\n    acl {\n    }')}`));

  test('a quoted tag and text full of escapes', () =>
    roundTripText('component "a b" {\n    command "/bin/echo \\"x\\" \'$HOME\'";\n    access-denied-message "no\\r\\n\\ttab \\\\ slash";\n    stdout file "/var/log/a b.log";\n}\n'));

  // (It limits nothing, so there is no `limits` statement to print, nor one in the model.)
  test('limits with only the ignored L letter', () =>
    roundTripText(component('    limits "L5";')));

  test('legacy env with every kind of item, append and prepend included', async () => {
    const source = component('    env (-, PATH, -TZ, "-LANG=C", "HOME=/var/x", "PATH+=:/opt/bin", "MANPATH=+/opt/man:", "X=a b");');
    await roundTripText(source);
    const file = join(TMP, `edge-${serial++}.conf`);
    writeFileSync(file, source);
    const config = await mustLoad(file, {});
    assert.deepEqual(config.components[0]?.env?.map((op) => op.op), ['clear', 'keep', 'unset', 'unset', 'set', 'append', 'prepend', 'set']);
    assert.match(dumpConfig(config), /^ {4}env \(-, PATH, -TZ, "-LANG=C", "HOME=\/var\/x", "PATH\+=:\/opt\/bin", "MANPATH=\+\/opt\/man:", "X=a b"\);$/m);
  });

  test('ACL addresses and socket URLs come back as written', async () => {
    const source = [
      'defacl a {\n    allow from (127.0.0.1, ::1, 10.0.0.0/255.0.0.0, "::ffff:10.0.0.0/104", 192.168.1.7/24);\n}',
      'control {\n    socket "local:///run/t.ctl;mode=600;user=root";\n}',
      component('    mode inetd;\n    socket inet://:8080;'),
    ].join('\n');
    await roundTripText(source);
    const file = join(TMP, `edge-${serial++}.conf`);
    writeFileSync(file, source);
    const text = dumpConfig(await mustLoad(file, {}));
    assert.match(text, /allow from \(127\.0\.0\.1, ::1, 10\.0\.0\.0\/255\.0\.0\.0, ::ffff:10\.0\.0\.0\/104, 192\.168\.1\.7\/24\);/);
    assert.match(text, /socket "local:\/\/\/run\/t\.ctl;mode=600;user=root";/);
    assert.match(text, /socket inet:\/\/:8080;/);
  });

  // (Node timers also hold at most 2^31-1 ms, ~24.8 days; longer delays fire after 1 ms.)
  test('a number of seconds too large to print as digits is refused', async () => {
    const file = join(TMP, `edge-${serial++}.conf`);
    writeFileSync(file, 'shutdown-timeout 1000000000000000000000;\n');
    const result = await loadConfig(file);
    assert.equal(result.config, null);
  });

  test('the longest duration a Node timer holds is accepted, one second more is not', async () => {
    const file = join(TMP, `edge-${serial++}.conf`);
    writeFileSync(file, 'shutdown-timeout 2147483;\n');
    assert.ok((await loadConfig(file)).config);
    await roundTripText('shutdown-timeout 2147483;\n');
    writeFileSync(file, 'shutdown-timeout 2147484;\n');
    assert.equal((await loadConfig(file)).config, null);
  });

  test('limits beyond a safe integer are refused', async () => {
    const file = join(TMP, `edge-${serial++}.conf`);
    writeFileSync(file, component('    limits "N100000000000000000000000";'));
    const result = await loadConfig(file);
    assert.equal(result.config, null);
  });
});

// ---- random valid configs ----

const word = fc.stringMatching(/^[a-z][a-z0-9_-]{0,7}$/);
// Text that needs quoting: blanks, quotes, backslashes, newlines, tabs, non-ASCII.
const text = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', '"', '\\', '\n', '\t', '$', '{', ';', '#', 'é', '/', '*'), maxLength: 12 });
const path = fc.array(word, { minLength: 1, maxLength: 3 }).map((parts) => `/${parts.join('/')}`);

function q(value: string): string {
  return `"${value.replace(/[\\"\n\t]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\${c}`))}"`;
}

const secondsMs = (min: number, max: number): fc.Arbitrary<string> => fc.integer({ min, max }).map((ms) => String(ms / 1000));

const SIGNALS = ['SIGTERM', 'SIGKILL', 'SIGHUP', 'SIGINT', 'SIGSEGV', 'SIGABRT'];
const EX = ['EX_OK', 'EX_USAGE', 'EX_DATAERR', 'EX_SOFTWARE', 'EX_OSERR', 'EX_TEMPFAIL', 'EX_CONFIG'];
const exitMatch = fc.oneof(
  fc.constantFrom(...EX),
  fc.integer({ min: 0, max: 255 }).map(String),
  fc.constantFrom(...SIGNALS),
  fc.integer({ min: 1, max: 64 }).map((n) => `"SIG+${n}"`),
);
const returnCode = fc
  .record(
    {
      codes: fc.array(exitMatch, { minLength: 1, maxLength: 3 }),
      action: fc.constantFrom('disable', 'restart'),
      exec: text,
      notify: fc.array(word, { minLength: 1, maxLength: 2 }),
      message: text,
    },
    { requiredKeys: ['codes'] },
  )
  .map((r) => [
    `return-code (${r.codes.join(', ')}) {`,
    ...(r.action !== undefined ? [`action ${r.action};`] : []),
    ...(r.exec !== undefined ? [`exec ${q(r.exec)};`] : []),
    ...(r.notify !== undefined ? [`notify (${r.notify.join(', ')});`] : []),
    ...(r.message !== undefined ? [`message ${q(r.message)};`] : []),
    '}',
  ].join('\n'));

const envName = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,5}$/);
const envBlock = fc
  .array(
    fc.oneof(
      fc.constant('clear;'),
      envName.map((n) => `keep ${q(n)};`),
      fc.tuple(envName, text).map(([n, v]) => `keep ${q(`${n}=${v}`)};`),
      fc.tuple(envName, text).map(([n, v]) => `set ${q(`${n}=${v}`)};`),
      envName.map((n) => `unset ${q(`${n}*`)};`),
      text.map((v) => `eval ${q(v)};`),
    ),
    { maxLength: 4 },
  )
  .map((ops) => `env {\n${ops.join('\n')}\n}`);
// Legacy one-line env, as a list, so adjacent quoted items are not joined into one string
// as grecs would. (A set value starting with "+" would read as a prepend.)
const legacyEnv = fc
  .tuple(
    fc.boolean(),
    fc.array(
      fc.oneof(
        envName,
        envName.map((n) => `-${n}`),
        fc.tuple(envName, text).map(([n, v]) => q(`-${n}=${v}`)),
        fc.tuple(envName, text.filter((v) => !v.startsWith('+'))).map(([n, v]) => q(`${n}=${v}`)),
        fc.tuple(envName, text).map(([n, v]) => q(`${n}+=${v}`)),
        fc.tuple(envName, text).map(([n, v]) => q(`${n}=+${v}`)),
      ),
      { minLength: 1, maxLength: 4 },
    ),
  )
  .map(([clear, items]) => `env (${[...(clear ? ['-'] : []), ...items].join(', ')});`);

const LIMIT_LETTERS = ['A', 'C', 'D', 'F', 'M', 'N', 'R', 'S', 'T', 'U'];
const limits = fc
  .tuple(fc.subarray(LIMIT_LETTERS, { minLength: 1 }), fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 10, maxLength: 10 }), fc.option(fc.integer({ min: -20, max: 20 })))
  .map(([letters, values, nice]) => `limits ${q([...letters.map((l, i) => `${l}${values[i] ?? 0}`), ...(nice !== null ? [`P${nice}`] : [])].join(' '))};`);
const umask = fc.integer({ min: 0, max: 0o777 }).map((n) => `umask ${n.toString(8).padStart(3, '0')};`);

const processStatements = fc
  .record(
    {
      user: word.map((u) => `user ${u};`),
      group: fc.array(word, { minLength: 1, maxLength: 3 }).map((g) => `group (${g.join(', ')});`),
      allgroups: fc.constantFrom('yes', 'no', 'true', 'false', 't', 'nil', '1', '0').map((b) => `allgroups ${b};`),
      umask,
      limits,
      env: fc.oneof(envBlock, legacyEnv),
      returnCodes: fc.array(returnCode, { minLength: 1, maxLength: 2 }).map((r) => r.join('\n')),
      shutdownTimeout: secondsMs(0, 600_000).map((s) => `shutdown-timeout ${s};`),
      tcpmuxTimeout: secondsMs(0, 120_000).map((s) => `tcpmux-timeout ${s};`),
      tcpmuxLineMax: fc.integer({ min: 8, max: 65536 }).map((n) => `tcpmux-line-max ${n};`),
    },
    { requiredKeys: [] },
  )
  .map((r) => Object.values(r));

// initial-delay ≤ 10 s ≤ max-delay, so any mix of global and component values is valid.
const respawnBlock = fc
  .record(
    {
      'initial-delay': secondsMs(0, 10_000),
      factor: fc.integer({ min: 100, max: 10_000 }).map((n) => String(n / 100)),
      'max-delay': secondsMs(10_000, 3_600_000),
      jitter: fc.integer({ min: 0, max: 100 }).map((n) => String(n / 100)),
      window: secondsMs(0, 3_600_000),
      limit: fc.integer({ min: 0, max: 1000 }).map(String),
      sleep: secondsMs(0, 3_600_000),
    },
    { requiredKeys: [] },
  )
  .map((r) => `respawn {\n${Object.entries(r).map(([k, v]) => `${k} ${v};`).join('\n')}\n}`);

const commandLine = fc
  .array(fc.oneof(word, path, text.map((t) => `'${t.replace(/'/g, '')}'`)), { minLength: 1, maxLength: 4 })
  .map((words) => (words[0]?.startsWith("'") ? ['/bin/x', ...words] : words).join(' '));

const cidr = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 8, max: 32 })).map(([a, b, p]) => `10.${a}.${b}.0/${p}`),
  fc.constantFrom('127.0.0.1', '::1', '2001:db8::/32', 'fe80::/10', '192.168.0.0/255.255.0.0', '::ffff:10.0.0.0/104', 'any', '/run/peer.sock'),
);

// An ACL body; `names` are defacls it may refer to.
const aclBody = (names: readonly string[]): fc.Arbitrary<string> =>
  fc
    .array(
      fc.tuple(
        fc.constantFrom('allow', 'deny'),
        fc.oneof(
          fc.constant('any'),
          fc.constant('all'),
          fc.array(cidr, { minLength: 1, maxLength: 3 }).map((a) => `from (${a.join(', ')})`),
          ...(names.length > 0
            ? [fc.tuple(fc.constantFrom(...names), fc.option(cidr)).map(([n, c]) => `acl ${n}${c !== null ? ` from ${c}` : ''}`)]
            : []),
        ),
      ),
      { maxLength: 4 },
    )
    .map((entries) => entries.map(([action, what]) => `${action} ${what};`).join('\n'));

const aclRef = (keyword: string, names: readonly string[]): fc.Arbitrary<string> =>
  names.length > 0
    ? fc.oneof(fc.constantFrom(...names).map((n) => `${keyword} ${n};`), aclBody(names).map((b) => `${keyword} {\n${b}\n}`))
    : aclBody(names).map((b) => `${keyword} {\n${b}\n}`);

const FLAGS_PLAIN = ['disable', 'precious', 'nullinput', 'siggroup', 'expandenv'];
const INTERNAL = ['echo', 'discard', 'daytime', 'time', 'chargen', 'qotd'];

type Kind = 'respawn' | 'inetd' | 'accept' | 'internal' | 'subordinate';

// One component; index i gives it a tag, a port and a unix path nobody else uses.
function component(i: number, kind: Kind, earlier: readonly string[], later: readonly string[], acls: readonly string[]): fc.Arbitrary<string> {
  const tag = `c${i}`;
  const socket = fc.constantFrom(
    `inet://127.0.0.1:${20000 + i}`,
    `inet://0.0.0.0:${30000 + i}`,
    `"inet6://[::1]:${40000 + i}"`,
    `inet://127.0.0.1:0`,
    `"unix:///run/c${i}.sock;user=u${i};mode=660"`,
    `unix:///run/d${i}.sock`,
  );
  const mode =
    kind === 'respawn' ? fc.constantFrom('respawn', 'exec', 'startup', 'shutdown', '')
      : kind === 'accept' ? fc.constant('accept')
        : kind === 'inetd' ? fc.constantFrom('inetd', 'nostartaccept', '')
          : kind === 'internal' ? fc.constantFrom('inetd', '')
            : fc.constantFrom('inetd', '');
  const extraFlags = kind === 'inetd' ? [...FLAGS_PLAIN, 'wait', 'sockenv', 'shell'] : [...FLAGS_PLAIN, 'sockenv', 'shell'];
  return fc
    .record({
      mode,
      flags: fc.subarray(extraFlags),
      command: commandLine,
      program: fc.option(path),
      socket,
      service: fc.constantFrom(...INTERNAL),
      subService: fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/),
      plus: fc.boolean(),
      process: processStatements,
      respawn: fc.option(respawnBlock),
      prerequisites: earlier.length > 0 ? fc.option(fc.oneof(fc.subarray([...earlier], { minLength: 1 }).map((p) => `(${p.join(', ')})`), fc.constantFrom('all', 'none'))) : fc.constant(null),
      dependents: later.length > 0 ? fc.option(fc.subarray([...later], { minLength: 1 })) : fc.constant(null),
      numbers: fc.record(
        {
          'max-instances': fc.integer({ min: 1, max: 1000 }),
          'max-rate': fc.integer({ min: 0, max: 1000 }),
          'max-ip-connections': fc.integer({ min: 1, max: 1000 }),
        },
        { requiredKeys: [] },
      ),
      messages: fc.record(
        { 'max-instances-message': text, 'max-ip-connections-message': text, 'access-denied-message': text, 'remove-file': path, chdir: path },
        { requiredKeys: [] },
      ),
      stdout: fc.option(fc.oneof(path.map((p) => `file ${p}`), fc.constantFrom('syslog info', 'syslog local3.err', 'syslog DEBUG', 'syslog daemon.notice'))),
      stderr: fc.option(fc.oneof(path.map((p) => `file ${q(p)}`), fc.constantFrom('syslog warning', 'syslog user.crit'))),
      acl: fc.option(aclRef('acl', acls)),
      listAcl: fc.option(aclRef('list-acl', acls)),
    })
    .map((r) => {
      const body: string[] = [];
      if (r.mode) body.push(`mode ${r.mode};`);
      if (kind === 'internal') {
        body.push('flags internal;', `service ${r.service};`, `socket ${r.socket};`);
      } else {
        const flags = [...r.flags.filter((f) => kind !== 'subordinate' || f !== 'wait'), ...(kind === 'subordinate' ? [r.plus ? 'tcpmuxplus' : 'tcpmux'] : [])];
        if (flags.length > 0) body.push(`flags (${flags.join(', ')});`);
        body.push(`command ${q(r.command)};`);
        if (r.program !== null) body.push(`program ${r.program};`);
        if (kind === 'subordinate') body.push('tcpmux-master master;', `service s${i}${r.subService};`);
        else if (kind !== 'respawn') body.push(`socket ${r.socket};`);
      }
      if (r.prerequisites !== null) body.push(`prerequisites ${r.prerequisites};`);
      if (r.dependents !== null) body.push(`dependents (${r.dependents.join(', ')});`);
      for (const [k, v] of Object.entries(r.numbers)) body.push(`${k} ${v};`);
      for (const [k, v] of Object.entries(r.messages)) body.push(`${k} ${q(v)};`);
      if (r.stdout !== null) body.push(`stdout ${r.stdout};`);
      if (r.stderr !== null) body.push(`stderr ${r.stderr};`);
      if (r.acl !== null) body.push(r.acl);
      if (r.listAcl !== null) body.push(r.listAcl);
      body.push(...r.process);
      if (r.respawn !== null) body.push(r.respawn);
      return `component ${tag} {\n${body.join('\n')}\n}`;
    });
}

// A whole valid config: globals, defacls (each may use earlier ones), an optional TCPMUX
// master, and components whose prerequisites point backwards and dependents forwards.
const validConfig: fc.Arbitrary<string> = fc
  .record({
    kinds: fc.array(fc.constantFrom<Kind>('respawn', 'respawn', 'inetd', 'accept', 'internal', 'subordinate'), { maxLength: 6 }),
    defacls: fc.integer({ min: 0, max: 3 }),
    globals: processStatements,
    respawn: fc.option(respawnBlock),
    pidfile: fc.option(path),
    debug: fc.option(fc.integer({ min: 0, max: 9 })),
    syslog: fc.option(fc.record({ facility: fc.constantFrom('daemon', 'user', 'local0', 'LOCAL7', 'authpriv'), tag: text, dev: path }, { requiredKeys: [] })),
    control: fc.option(fc.constantFrom('unix:///run/tpies.ctl', '"unix:///run/t.ctl;group=wheel;mode=600"', 'inet://127.0.0.1:8079')),
  })
  .chain((g) => {
    const acls = Array.from({ length: g.defacls }, (_, i) => `a${i}`);
    const tags = g.kinds.map((_, i) => `c${i}`);
    const hasMaster = g.kinds.includes('subordinate');
    return fc
      .tuple(
        fc.tuple(...acls.map((name, i) => aclBody(acls.slice(0, i)).map((b) => `defacl ${name} {\n${b}\n}`))),
        fc.tuple(...g.kinds.map((kind, i) => component(i, kind, tags.slice(0, i), tags.slice(i + 1), acls))),
        fc.option(aclRef('acl', acls).filter((a) => a.endsWith('}'))),
        fc.option(aclRef('admin-acl', acls)),
      )
      .map(([defacls, components, globalAcl, adminAcl]) =>
        [
          ...g.globals,
          ...(g.respawn !== null ? [g.respawn] : []),
          ...(g.pidfile !== null ? [`pidfile ${g.pidfile};`] : []),
          ...(g.debug !== null ? [`debug ${g.debug};`] : []),
          ...(g.syslog !== null ? [`syslog {\n${Object.entries(g.syslog).map(([k, v]) => `${k} ${q(v)};`).join('\n')}\n}`] : []),
          ...(g.control !== null ? [`control {\nsocket ${g.control};\n${adminAcl ?? ''}\n}`] : []),
          ...defacls,
          ...(globalAcl !== null ? [globalAcl] : []),
          ...(hasMaster ? ['component master {\nsocket inet://127.0.0.1:19999;\nservice tcpmux;\nflags internal;\n}'] : []),
          ...components,
        ].join('\n') + '\n',
      );
  });

describe('dumpConfig round trip on random valid configs', () => {
  test('the generator makes valid configs (it must, or the round trip proves little)', async () => {
    const samples = fc.sample(validConfig, { numRuns: 50, seed: 42 });
    for (const [i, sample] of samples.entries()) {
      const file = join(TMP, `sample-${i}.conf`);
      writeFileSync(file, sample);
      await mustLoad(file, {});
    }
  });

  test('dump → load gives exactly the same model, and the dump is canonical', async () => {
    await fc.assert(
      fc.asyncProperty(validConfig, async (source) => {
        const file = join(TMP, `gen-${serial++}.conf`);
        writeFileSync(file, source);
        const config = await mustLoad(file, {});
        const { text, again, textAgain } = await roundTrip(config);
        assert.equal(textAgain, text, 'dumping the reloaded model prints the same text');
        assert.deepEqual(modelForComparison(again), modelForComparison(config), `--- source ---\n${source}\n--- dump ---\n${text}`);
      }),
      { numRuns: 300 },
    );
  });
});
