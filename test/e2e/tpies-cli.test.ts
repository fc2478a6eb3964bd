// The built CLI (`node dist/src/bin/tpies.js`, what ships) on config files: --lint exit
// codes (0 valid, 78 config errors, 64 usage) and diagnostics text, --dump-config output
// that lints clean again, -I, --syntax inetd, --help and --version.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'dist/src/bin/tpies.js');
const GOLDEN = join(ROOT, 'test/config/golden');
const TMP = mkdtempSync(join(tmpdir(), 'tpies-cli-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

before(() => {
  // npm test builds first; running this file alone needs `npm run build` beforehand.
  if (!existsSync(BIN)) assert.fail(`${BIN} is missing: run \`npm run build\` before the e2e tests`);
});

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

// Run the built tpies; resolves with its exit code and output whatever the code.
function tpies(args: readonly string[], cwd = ROOT): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { cwd, timeout: 20_000, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(error);
        return;
      }
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

function confFilesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((f) => f.endsWith('.conf'))
    .sort()
    .map((f) => join(dir, f));
}

const syntaxFor = (file: string): string[] => (basename(file) === 'inetd.conf' ? ['--syntax', 'inetd'] : []);
const ETC = confFilesUnder(join(ROOT, 'etc')).map((f) => f.slice(ROOT.length));

describe('tpies --lint on etc/**/*.conf', { concurrency: 4 }, () => {
  test('etc/ has configs to lint', () => {
    assert.ok(ETC.includes('etc/tpies.conf'), ETC.join(', '));
  });

  for (const file of ETC) {
    test(`${file} is valid: exit 0, nothing printed`, async () => {
      const run = await tpies(['--lint', '-c', file, ...syntaxFor(file)]);
      assert.equal(run.stderr, '');
      assert.equal(run.stdout, '');
      assert.equal(run.code, 0);
    });

    test(`${file}: --dump-config prints a config that lints clean`, async () => {
      const dumped = await tpies(['--dump-config', '-c', file, ...syntaxFor(file)]);
      assert.equal(dumped.code, 0, dumped.stderr);
      assert.match(dumped.stdout, /^shutdown-timeout /m);
      const out = join(TMP, `${file.replace(/\//g, '_')}.dump.conf`);
      writeFileSync(out, dumped.stdout);
      const relinted = await tpies(['--lint', '-c', out]);
      assert.equal(relinted.stderr, '');
      assert.equal(relinted.code, 0);
      // Canonical: the dump of the dump is the dump.
      const again = await tpies(['--dump-config', '-c', out]);
      assert.equal(again.stdout, dumped.stdout);
    });
  }
});

describe('tpies --lint on broken configs', { concurrency: 4 }, () => {
  // The "done when": three different mistakes, all reported with file:line:col, exit 78.
  test('three-mistakes.conf: exit 78, three located errors', async () => {
    const run = await tpies(['--lint', '-c', 'bad/three-mistakes.conf'], GOLDEN);
    assert.equal(run.code, 78);
    assert.equal(run.stdout, '');
    const heads = run.stderr.split('\n').filter((l) => /^bad\/three-mistakes\.conf:\d+:\d+: error: /.test(l));
    assert.deepEqual(
      heads.map((l) => l.split(': error: ')[0]),
      ['bad/three-mistakes.conf:6:5', 'bad/three-mistakes.conf:8:11', 'bad/three-mistakes.conf:9:5'],
      run.stderr,
    );
    assert.match(run.stderr, /\n3 errors\n$/);
  });

  test('an absolute -c path is reported as given', async () => {
    const file = join(GOLDEN, 'bad/three-mistakes.conf');
    const run = await tpies(['--lint', '-c', file]);
    assert.equal(run.code, 78);
    assert.ok(run.stderr.startsWith(`${file}:6:5: error: unknown statement "comand"`), run.stderr);
  });

  // The CLI prints exactly what the golden corpus expects (file names relative to the cwd).
  for (const name of readdirSync(join(GOLDEN, 'bad')).filter((f) => f.endsWith('.conf')).sort()) {
    test(`bad/${name}: exit 78 and exactly its .err.txt`, async () => {
      const run = await tpies(['--lint', '-c', `bad/${name}`], GOLDEN);
      assert.equal(run.code, 78);
      assert.equal(run.stdout, '');
      assert.equal(run.stderr, readFileSync(join(GOLDEN, 'bad', name.replace(/\.conf$/, '.err.txt')), 'utf8'));
    });
  }

  test('a missing config file: exit 78 and one clear "cannot read config" line', async () => {
    const run = await tpies(['--lint', '-c', 'no/such/tpies.conf'], TMP);
    assert.equal(run.code, 78);
    assert.equal(run.stdout, '');
    const lines = run.stderr.split('\n').filter((l) => l.includes('cannot read config'));
    assert.deepEqual(lines, ['tpies: cannot read config no/such/tpies.conf: no such file or directory'], run.stderr);
    assert.doesNotMatch(run.stderr, /\|/, 'no source excerpt for a file that was never read');
  });

  // Like any other fatal CLI error: no "error:" label, no rule, no "1 error" summary.
  test('a missing config file prints nothing but that one line', async () => {
    const run = await tpies(['--lint', '-c', 'no/such/tpies.conf'], TMP);
    assert.equal(run.stderr, 'tpies: cannot read config no/such/tpies.conf: no such file or directory\n');
  });

  test('a missing config file: the same one line from --dump-config and when starting the daemon', async () => {
    for (const args of [['--dump-config'], ['--foreground'], []]) {
      const run = await tpies([...args, '-c', 'no/such/tpies.conf'], TMP);
      assert.equal(run.code, 78, `${args.join(' ')}: ${run.stderr}`);
      assert.equal(run.stdout, '');
      assert.equal(run.stderr, 'tpies: cannot read config no/such/tpies.conf: no such file or directory\n', args.join(' '));
    }
  });

  test('a missing inetd.conf (--syntax inetd): the same one line', async () => {
    const run = await tpies(['--lint', '--syntax', 'inetd', '-c', 'no/such/inetd.conf'], TMP);
    assert.equal(run.code, 78);
    assert.equal(run.stderr, 'tpies: cannot read config no/such/inetd.conf: no such file or directory\n');
  });

  test('a directory as the config file: exit 78', async () => {
    const run = await tpies(['--lint', '-c', TMP]);
    assert.equal(run.code, 78);
    assert.match(run.stderr, /^tpies: cannot read config .*: [^\n]*\n$/);
  });

  test('warnings alone: exit 0, the warning printed and counted', async () => {
    const file = join(TMP, 'warning.conf');
    writeFileSync(file, 'component a {\n    mode inetd;\n    socket inet://127.0.0.1:0;\n    flags resolve;\n    command /bin/cat;\n}\n');
    const run = await tpies(['--lint', '-c', 'warning.conf'], TMP);
    assert.equal(run.code, 0);
    assert.match(run.stderr, /^warning\.conf:4:5: warning: component "a": flag "resolve" has no effect without "sockenv" \[flag-without-effect\]\n/);
    assert.match(run.stderr, /\n1 warning\n$/);
    assert.doesNotMatch(run.stderr, /error/);
  });

  test('errors and warnings together: exit 78, both kinds labelled and counted', async () => {
    const file = join(TMP, 'mixed.conf');
    writeFileSync(file, 'component a {\n    mode inetd;\n    socket inet://127.0.0.1:0;\n    flags resolve;\n    command /bin/cat;\n    umask 8;\n}\n');
    const run = await tpies(['--lint', '-c', 'mixed.conf'], TMP);
    assert.equal(run.code, 78);
    assert.match(run.stderr, /^mixed\.conf:4:5: warning: /m);
    assert.match(run.stderr, /^mixed\.conf:6:11: error: "umask": "8" is not an octal value up to 777 \[bad-value\]$/m);
    assert.match(run.stderr, /\n1 error, 1 warning\n$/);
  });

  test('--dump-config of a broken config: exit 78, nothing on stdout', async () => {
    const run = await tpies(['--dump-config', '-c', 'bad/three-mistakes.conf'], GOLDEN);
    assert.equal(run.code, 78);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /3 errors\n$/);
  });
});

describe('tpies options', { concurrency: 4 }, () => {
  test('-I adds to the #include <…> search path', async () => {
    const dir = join(TMP, 'inc');
    mkdirSync(join(dir, 'lib'), { recursive: true });
    writeFileSync(join(dir, 'main.conf'), '#include <extra.conf>\ncomponent main {\n    command /bin/true;\n    prerequisites extra;\n}\n');
    writeFileSync(join(dir, 'lib', 'extra.conf'), 'component extra {\n    command /bin/true;\n}\n');
    const without = await tpies(['--lint', '-c', 'main.conf'], dir);
    assert.equal(without.code, 78);
    assert.match(without.stderr, /^main\.conf:1:1: error: /);
    const withDir = await tpies(['--lint', '-c', 'main.conf', '-I', 'lib'], dir);
    assert.equal(withDir.stderr, '');
    assert.equal(withDir.code, 0);
    const long = await tpies(['--lint', '-c', 'main.conf', '--include-directory', join(dir, 'lib')], dir);
    assert.equal(long.code, 0, long.stderr);
  });

  test('--syntax inetd reads inetd.conf; the same file as pies syntax is refused', async () => {
    const file = join(TMP, 'inetd.conf');
    writeFileSync(file, 'echo stream tcp nowait root internal\n127.0.0.1:7007 stream tcp nowait nobody /bin/cat cat\n');
    const inetd = await tpies(['--lint', '--syntax', 'inetd', '-c', 'inetd.conf'], TMP);
    assert.equal(inetd.stderr, '');
    assert.equal(inetd.code, 0);
    const pies = await tpies(['--lint', '-c', 'inetd.conf'], TMP);
    assert.equal(pies.code, 78);
    assert.match(pies.stderr, /^inetd\.conf:\d+:\d+: error: syntax error/);
  });

  test('-t is --lint', async () => {
    const run = await tpies(['-t', '-c', 'etc/tpies.conf']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '');
  });

  test('--help: exit 0, usage on stdout', async () => {
    const run = await tpies(['--help']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^usage: tpies \[OPTIONS\]\n/);
    assert.match(run.stdout, /--lint/);
    assert.match(run.stdout, /--dump-config/);
    assert.equal(run.stderr, '');
  });

  test('--version: exit 0, the package version', async () => {
    const run = await tpies(['--version']);
    assert.equal(run.code, 0);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(run.stdout, `tpies ${pkg.version}\n`);
  });

  const usageErrors: ReadonlyArray<[string, readonly string[], RegExp]> = [
    ['an unknown option', ['--frobnicate'], /^tpies: Unknown option '--frobnicate'\n/],
    ['an unknown --syntax', ['--lint', '--syntax', 'xml', '-c', 'etc/tpies.conf'], /^tpies: unknown --syntax "xml" \(expected pies or inetd\)\n/],
    ['a positional argument', ['--lint', 'etc/tpies.conf'], /^tpies: Unexpected argument 'etc\/tpies\.conf'/],
    ['-c without a value', ['--lint', '-c'], /^tpies: Option '-c, --config-file <value>' argument missing/],
    ['--diff without --lint', ['--diff', '-c', 'etc/tpies.conf'], /^tpies: --diff goes with --lint\n/],
    ['an unknown --log-level', ['--log-level', 'loud'], /^tpies: unknown --log-level "loud"/],
  ];
  for (const [what, args, message] of usageErrors) {
    test(`${what}: exit 64, the problem and the usage on stderr`, async () => {
      const run = await tpies(args);
      assert.equal(run.code, 64, run.stderr);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, message);
      assert.match(run.stderr, /\nusage: tpies \[OPTIONS\]\n/);
    });
  }
});
