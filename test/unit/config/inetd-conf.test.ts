// config/inetd-conf.ts: inetd.conf lines become the same component statements a pies config
// would hold, located at the inetd.conf field they came from, and every bad line is reported.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Node, StatementNode } from '../../../src/config/ast.js';
import { buildConfig } from '../../../src/config/build.js';
import { CHECKS } from '../../../src/config/checks/index.js';
import { splitCommandLine } from '../../../src/config/command-line.js';
import { Diagnostics, formatDiagnostics, formatLocation, type Diagnostic } from '../../../src/config/diagnostics.js';
import { parseInetdConf } from '../../../src/config/inetd-conf.js';
import { parseConfigText } from '../../../src/config/parse.js';
import { printTree } from '../../../src/config/print.js';
import { parseServicesFile } from '../../../src/inetd/socket-address.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/conf/inetd');

function fixture(name: string): { text: string; file: string } {
  return { text: readFileSync(path.join(FIXTURES, name), 'utf8'), file: name };
}

// A component as `{tag: {statement: 'value value…'}}`; the structure without locations.
function components(body: readonly StatementNode[]): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const c of body) {
    assert.equal(c.name, 'component');
    const tag = c.values[0];
    assert.ok(tag && tag.type !== 'List');
    const block: Record<string, string> = {};
    for (const s of c.block ?? []) {
      assert.equal(s.type, 'Statement');
      if (s.type !== 'Statement') continue;
      assert.equal(block[s.name], undefined, `${tag.value}: "${s.name}" emitted twice`);
      block[s.name] = s.values.map((v) => (v.type === 'List' ? '(…)' : v.value)).join(' ');
    }
    out[tag.value] = block;
  }
  return out;
}

function statementOf(body: readonly StatementNode[], tag: string, name: string): StatementNode {
  const c = body.find((s) => s.values[0]?.type !== 'List' && s.values[0]?.value === tag);
  assert.ok(c, `no component ${tag}`);
  const s = (c.block ?? []).find((n): n is StatementNode => n.type === 'Statement' && n.name === name);
  assert.ok(s, `component ${tag} has no ${name}`);
  return s;
}

function where(d: Diagnostic): string {
  assert.ok(d.location, `diagnostic without location: ${d.message}`);
  return formatLocation(d.location);
}

test('the sample inetd.conf becomes one component per service and listen address', () => {
  const { text, file } = fixture('sample.conf');
  const { body, diagnostics } = parseInetdConf(text, file);
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(components(body), {
    echo: { mode: 'inetd', flags: 'internal', socket: 'inet://0.0.0.0:echo', user: 'root', service: 'echo' },
    'daytime/tcp6': { mode: 'inetd', flags: 'internal', socket: 'inet6://[::]:daytime', user: 'root', service: 'daytime' },
    ftp: { mode: 'inetd', socket: 'inet://0.0.0.0:ftp', 'max-rate': '400', user: 'root', program: '/usr/sbin/ftpd', command: 'ftpd -l -A' },
    finger: {
      mode: 'inetd',
      flags: 'wait',
      socket: 'inet://0.0.0.0:finger',
      user: 'nobody',
      group: 'nogroup',
      program: '/usr/sbin/fingerd',
      command: `fingerd -w 'it'\\''s'`,
    },
    '10.0.0.1:smtp': { mode: 'inetd', socket: 'inet://10.0.0.1:smtp', user: 'mail', group: 'mail', program: '/usr/sbin/smtpd', command: `smtpd '$HOME'` },
    '10.0.0.2:smtp': { mode: 'inetd', socket: 'inet://10.0.0.2:smtp', user: 'mail', group: 'mail', program: '/usr/sbin/smtpd', command: `smtpd '$HOME'` },
    // After `127.0.0.1:`; a program without arguments is its own argv[0].
    '127.0.0.1:8080': { mode: 'inetd', socket: 'inet://127.0.0.1:8080', user: 'www', program: '/srv/web/run', command: '/srv/web/run' },
    // After `*:` the any-address is back; numeric ports stay numeric.
    '9000': { mode: 'inetd', socket: 'inet://0.0.0.0:9000', 'max-rate': '0', user: 'nobody', program: '/bin/cat', command: 'cat' },
    tcpmux: { mode: 'inetd', flags: 'internal', socket: 'inet://0.0.0.0:tcpmux', user: 'root', service: 'tcpmux' },
    'tcpmux/echo': { mode: 'inetd', flags: 'tcpmuxplus', service: 'echo', 'tcpmux-master': 'tcpmux', user: 'root', program: '/bin/cat', command: 'cat' },
    'tcpmux/date': { mode: 'inetd', flags: 'tcpmux', service: 'date', 'tcpmux-master': 'tcpmux', user: 'nobody', program: '/bin/date', command: 'date -u' },
  });
});

test('the sample builds into components and passes the checks without a diagnostic', () => {
  const { text, file } = fixture('sample.conf');
  const { body, diagnostics } = parseInetdConf(text, file);
  assert.deepEqual(diagnostics, []);
  // A fixed table, so the test does not depend on this machine's /etc/services.
  const services = parseServicesFile('tcpmux 1/tcp\necho 7/tcp\ndaytime 13/tcp\nftp 21/tcp\nsmtp 25/tcp\nfinger 79/tcp\n');
  const diags = new Diagnostics();
  const config = buildConfig(body, { diags, services });
  for (const check of CHECKS) check(config, diags);
  assert.deepEqual(diags.list, []);
  const byTag = new Map(config.components.map((c) => [c.tag, c]));
  assert.equal(byTag.size, 11);
  assert.deepEqual([...byTag.values()].map((c) => c.mode), Array(11).fill('inetd'));
  assert.equal(byTag.get('echo')?.internal, 'echo');
  assert.equal(byTag.get('tcpmux')?.internal, 'tcpmux');
  assert.deepEqual(byTag.get('daytime/tcp6')?.socket, { kind: 'inet', family: 6, host: '::', port: 13, portName: 'daytime', url: 'inet6://[::]:daytime' });
  assert.deepEqual(byTag.get('10.0.0.2:smtp')?.socket, { kind: 'inet', family: 4, host: '10.0.0.2', port: 25, portName: 'smtp', url: 'inet://10.0.0.2:smtp' });
  assert.deepEqual(byTag.get('finger')?.argv, ['fingerd', '-w', "it's"]);
  assert.deepEqual(byTag.get('finger')?.group, ['nogroup']);
  assert.ok(byTag.get('finger')?.flags.has('wait'));
  assert.equal(byTag.get('ftp')?.maxRate, 400);
  const date = byTag.get('tcpmux/date');
  assert.equal(date?.tcpmuxMaster, 'tcpmux');
  assert.equal(date?.service, 'date');
  assert.ok(date?.flags.has('tcpmux'));
  assert.equal(date?.socket, undefined);
  assert.ok(byTag.get('tcpmux/echo')?.flags.has('tcpmuxplus'));
  assert.deepEqual(byTag.get('tcpmux/echo')?.location, { file: 'sample.conf', line: 15, column: 1 });
});

test('an implicit master builds and checks cleanly too', () => {
  const { body } = parseInetdConf('tcpmux/+hello stream tcp nowait nobody /bin/echo echo hi\n', 'i.conf');
  const diags = new Diagnostics();
  const config = buildConfig(body, { diags, services: parseServicesFile('tcpmux 1/tcp\n') });
  for (const check of CHECKS) check(config, diags);
  assert.deepEqual(diags.list, []);
  assert.deepEqual(
    config.components.map((c) => [c.tag, c.internal ?? c.tcpmuxMaster]),
    [
      ['tcpmux', 'tcpmux'],
      ['tcpmux/hello', 'tcpmux'],
    ],
  );
});

test('command lines split back into exactly the inetd.conf argument words', () => {
  const { text, file } = fixture('sample.conf');
  const { body } = parseInetdConf(text, file);
  const argv = (tag: string): readonly string[] | string => {
    const v = statementOf(body, tag, 'command').values[0];
    assert.ok(v && v.type !== 'List');
    const split = splitCommandLine(v.value);
    return 'argv' in split ? split.argv : split.error;
  };
  assert.deepEqual(argv('ftp'), ['ftpd', '-l', '-A']);
  assert.deepEqual(argv('finger'), ['fingerd', '-w', "it's"]);
  assert.deepEqual(argv('10.0.0.1:smtp'), ['smtpd', '$HOME']);
  assert.deepEqual(argv('tcpmux/date'), ['date', '-u']);
});

test('every statement is located at the inetd.conf field it came from', () => {
  const { text, file } = fixture('sample.conf');
  const { body } = parseInetdConf(text, file);
  const at = (s: { location: { file: string; line: number; column: number } }): string => formatLocation(s.location);
  const ftp = body.find((c) => c.values[0]?.type !== 'List' && c.values[0]?.value === 'ftp');
  assert.ok(ftp);
  assert.equal(at(ftp), 'sample.conf:6:1');
  // `ftp\tstream\ttcp\tnowait.400\troot\t/usr/sbin/ftpd\tftpd -l -A`
  assert.equal(at(statementOf(body, 'ftp', 'max-rate')), 'sample.conf:6:23');
  assert.equal(at(statementOf(body, 'ftp', 'user')), 'sample.conf:6:27');
  assert.equal(at(statementOf(body, 'ftp', 'program')), 'sample.conf:6:32');
  assert.equal(at(statementOf(body, 'ftp', 'command')), 'sample.conf:6:47');
  // `finger stream tcp wait nobody.nogroup …`: the group points inside the user field.
  assert.equal(at(statementOf(body, 'finger', 'flags')), 'sample.conf:7:19');
  assert.equal(at(statementOf(body, 'finger', 'group')), 'sample.conf:7:31');
  // `10.0.0.1,10.0.0.2:smtp …`: each socket points at its own node.
  assert.equal(at(statementOf(body, '10.0.0.1:smtp', 'socket')), 'sample.conf:8:1');
  assert.equal(at(statementOf(body, '10.0.0.2:smtp', 'socket')), 'sample.conf:8:10');
  assert.equal(at(statementOf(body, 'tcpmux/echo', 'service')), 'sample.conf:15:9');
  assert.equal(at(statementOf(body, 'daytime/tcp6', 'user')), 'sample.conf:4:32');
});

test('the result is the generic AST: printed as pies text it parses back to the same tree', () => {
  const { text, file } = fixture('sample.conf');
  const { body } = parseInetdConf(text, file);
  const printed = printTree(body);
  const reparsed = parseConfigText(printed, 'printed.conf');
  assert.deepEqual(reparsed.diagnostics, []);
  assert.ok(reparsed.file);
  const strip = (nodes: readonly Node[]): unknown =>
    nodes.map((n) => {
      assert.equal(n.type, 'Statement');
      if (n.type !== 'Statement') return null;
      return { name: n.name, values: n.values.map((v) => (v.type === 'List' ? null : [v.type, v.value])), block: n.block ? strip(n.block) : null };
    });
  assert.deepEqual(strip(reparsed.file.body), strip(body));
});

test('bad lines are all reported with file:line:col, and good lines still come through', () => {
  const { text, file } = fixture('bad.conf');
  const { body, diagnostics } = parseInetdConf(text, file);
  assert.deepEqual(
    diagnostics.map((d) => [d.severity, d.rule, where(d)]),
    [
      ['error', 'inetd-syntax', 'bad.conf:2:1'], // too few fields
      ['error', 'unsupported', 'bad.conf:3:9'], // dgram
      ['error', 'unsupported', 'bad.conf:3:15'], // udp, on the same line
      ['error', 'unsupported', 'bad.conf:4:9'], // dgram with tcp
      ['error', 'unsupported', 'bad.conf:5:16'], // udp with stream
      ['error', 'inetd-syntax', 'bad.conf:6:16'], // "maybe"
      ['error', 'inetd-syntax', 'bad.conf:6:22'], // "root."
      ['error', 'inetd-syntax', 'bad.conf:8:1'], // HOST: with more fields
      ['error', 'inetd-syntax', 'bad.conf:9:1'], // tcpmux/ without a name
      ['error', 'inetd-syntax', 'bad.conf:10:34'], // internal subordinate
      ['error', 'inetd-address', 'bad.conf:11:1'], // bad node
      ['error', 'inetd-duplicate', 'bad.conf:12:1'], // second "ok"
    ],
  );
  assert.match(diagnostics[0]!.message, /at least 6 fields .* found 3/);
  assert.match(diagnostics[1]!.message, /socket type "dgram" is not supported/);
  assert.match(diagnostics[2]!.message, /protocol "udp" is not supported/);
  assert.deepEqual(diagnostics[11]!.notes, [{ message: 'first defined here', location: { file: 'bad.conf', line: 7, column: 1 } }]);
  assert.deepEqual(Object.keys(components(body)), ['ok']);
  assert.equal(components(body).ok?.command, 'true');
  const printed = formatDiagnostics(diagnostics, new Map([[file, text]]));
  assert.match(printed, /^bad\.conf:3:15: error: protocol "udp" is not supported.*\n.*\n3 \| daytime dgram udp wait root internal\n +\| {15}\^$/m);
  assert.match(printed, /12 errors\n$/);
});

test('tcpmux/ subordinates without a master line get an implicit master, with a warning', () => {
  const text = ['# no tcpmux line', 'echo stream tcp nowait root internal', 'tcpmux/+hello stream tcp nowait nobody /bin/echo echo hi', 'tcpmux/bye stream tcp nowait nobody /bin/true true', ''].join('\n');
  const { body, diagnostics } = parseInetdConf(text, 'i.conf');
  assert.deepEqual(
    diagnostics.map((d) => [d.severity, d.rule, where(d)]),
    [['warning', 'inetd-implicit-master', 'i.conf:3:1']],
  );
  const c = components(body);
  assert.deepEqual(Object.keys(c), ['echo', 'tcpmux', 'tcpmux/hello', 'tcpmux/bye']);
  assert.deepEqual(c.tcpmux, { mode: 'inetd', socket: 'inet://0.0.0.0:tcpmux', flags: 'internal', service: 'tcpmux' });
  assert.equal(c['tcpmux/hello']?.['tcpmux-master'], 'tcpmux');
  assert.equal(c['tcpmux/bye']?.['tcpmux-master'], 'tcpmux');
  assert.equal(c['tcpmux/hello']?.flags, 'tcpmuxplus');
});

test('subordinates attach to the first master, even one defined after them', () => {
  const text = [
    'tcpmux/x stream tcp nowait root /bin/true true',
    '127.0.0.1,127.0.0.2:tcpmux stream tcp nowait root internal',
    'tcpmux stream tcp6 nowait root internal',
    '10.1.1.1:tcpmux/y stream tcp nowait root /bin/true true',
  ].join('\n');
  const { body, diagnostics } = parseInetdConf(text, 'm.conf');
  // The node on a subordinate means nothing: it has no socket.
  assert.deepEqual(
    diagnostics.map((d) => [d.severity, d.rule, where(d)]),
    [['warning', 'inetd-syntax', 'm.conf:4:1']],
  );
  const c = components(body);
  assert.deepEqual(Object.keys(c), ['tcpmux/x', '127.0.0.1:tcpmux', '127.0.0.2:tcpmux', 'tcpmux/tcp6', 'tcpmux/y']);
  assert.equal(c['tcpmux/x']?.['tcpmux-master'], '127.0.0.1:tcpmux');
  assert.equal(c['tcpmux/y']?.['tcpmux-master'], '127.0.0.1:tcpmux');
  assert.equal(c['tcpmux/y']?.socket, undefined);
  assert.equal(c['tcpmux/tcp6']?.socket, 'inet6://[::]:tcpmux');
});

test('IPv6 nodes, HOST: lists and protocol families', () => {
  const text = [
    '::1:echo stream tcp nowait root internal',
    '[::1]:daytime stream tcp6 nowait root internal',
    'localhost,192.0.2.1:',
    'chargen stream tcp nowait root internal',
    'qotd stream tcp6 nowait root internal',
    '*:',
    'fe80::1:time stream tcp4 nowait root internal',
    'discard stream tcp46 nowait root internal',
    'a,,b:echo stream tcp nowait root internal',
  ].join('\n');
  const { body, diagnostics } = parseInetdConf(text, 'v6.conf');
  assert.deepEqual(
    diagnostics.map((d) => [d.rule, where(d)]),
    [
      ['inetd-address', 'v6.conf:5:1'], // tcp6 on localhost
      ['inetd-address', 'v6.conf:5:1'], // tcp6 on 192.0.2.1
      ['inetd-address', 'v6.conf:7:1'], // tcp4 on an IPv6 node
      ['unsupported', 'v6.conf:8:16'], // tcp46
      ['inetd-address', 'v6.conf:9:3'], // the empty node
    ],
  );
  assert.match(diagnostics[0]!.message, /"localhost" is not an IPv6 address/);
  // The address came from the HOST: line, so a note points there.
  assert.deepEqual(diagnostics[1]!.notes, [{ message: 'listen address set here', location: { file: 'v6.conf', line: 3, column: 11 } }]);
  const c = components(body);
  assert.deepEqual(Object.keys(c), ['::1:echo', '::1:daytime/tcp6', 'localhost:chargen', '192.0.2.1:chargen']);
  assert.equal(c['::1:echo']?.socket, 'inet6://[::1]:echo');
  assert.equal(c['::1:daytime/tcp6']?.socket, 'inet6://[::1]:daytime');
  assert.equal(c['localhost:chargen']?.socket, 'inet://localhost:chargen');
  assert.equal(c['192.0.2.1:chargen']?.socket, 'inet://192.0.2.1:chargen');
});

test('comments, blank lines, CRLF and extra arguments after internal', () => {
  const text = '# comment\r\n\r\n   \t\r\n\t# indented comment\r\necho stream tcp nowait root internal extra\r\n';
  const { body, diagnostics } = parseInetdConf(text, 'crlf.conf');
  assert.deepEqual(
    diagnostics.map((d) => [d.severity, d.rule, where(d)]),
    [['warning', 'inetd-syntax', 'crlf.conf:5:38']],
  );
  assert.deepEqual(components(body), { echo: { mode: 'inetd', flags: 'internal', socket: 'inet://0.0.0.0:echo', user: 'root', service: 'echo' } });
});

test('bad wait and user fields', () => {
  const text = ['a stream tcp nowait.x root /bin/a a', 'b stream tcp wait.5 :wheel /bin/b b', 'c stream tcp nowait u:g.h /bin/c c'].join('\n');
  const { body, diagnostics } = parseInetdConf(text, 'w.conf');
  assert.deepEqual(
    diagnostics.map((d) => [d.rule, where(d)]),
    [
      ['inetd-syntax', 'w.conf:1:21'],
      ['inetd-syntax', 'w.conf:2:21'],
    ],
  );
  // A colon wins over a dot, so the group may hold one.
  assert.deepEqual(Object.keys(components(body)), ['c']);
  assert.equal(components(body).c?.user, 'u');
  assert.equal(components(body).c?.group, 'g.h');
  // `.MAX` applies to wait too, as in GNU inetd.
  assert.deepEqual(components(parseInetdConf('b stream tcp wait.5 u /bin/b b', 'w.conf').body).b, {
    mode: 'inetd',
    flags: 'wait',
    socket: 'inet://0.0.0.0:b',
    'max-rate': '5',
    user: 'u',
    program: '/bin/b',
    command: 'b',
  });
});
