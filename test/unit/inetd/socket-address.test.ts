// Unit tests for socket URLs (src/inetd/socket-address.ts): inet, inet6, unix/local/file with
// their arguments, refusals, the canonical form (a fast-check round trip) and /etc/services.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { SocketAddress } from '../../../src/config/model.js';
import { type ParsedSocketAddress, formatSocketAddress, parseServicesFile, parseSocketAddress } from '../../../src/inetd/socket-address.js';

const SERVICES = new Map<string, number>([
  ['echo', 7],
  ['tcpmux', 1],
  ['http', 80],
]);

function ok(url: string, services: ReadonlyMap<string, number> = SERVICES): SocketAddress {
  const r = parseSocketAddress(url, services);
  if ('error' in r) assert.fail(`${url}: unexpected error: ${r.error}`);
  return r.address;
}

function err(url: string, pattern?: RegExp, services: ReadonlyMap<string, number> = SERVICES): Extract<ParsedSocketAddress, { error: string }> {
  const r = parseSocketAddress(url, services);
  if (!('error' in r)) return assert.fail(`${url}: expected an error, got ${JSON.stringify(r.address)}`);
  assert.equal(typeof r.error, 'string');
  assert.ok(r.error.length > 0);
  if (pattern) assert.match(r.error, pattern);
  return r;
}

// ---- inet ----------------------------------------------------------------------------------

test('inet: numeric host and port', () => {
  assert.deepEqual(ok('inet://127.0.0.1:7000'), { kind: 'inet', family: 4, host: '127.0.0.1', port: 7000, url: 'inet://127.0.0.1:7000' });
  assert.deepEqual(ok('inet://0.0.0.0:0'), { kind: 'inet', family: 4, host: '0.0.0.0', port: 0, url: 'inet://0.0.0.0:0' });
  assert.deepEqual(ok('inet://10.1.2.3:65535'), { kind: 'inet', family: 4, host: '10.1.2.3', port: 65535, url: 'inet://10.1.2.3:65535' });
});

test('inet: a host name is kept as written (no lookup)', () => {
  assert.deepEqual(ok('inet://localhost:80'), { kind: 'inet', family: 4, host: 'localhost', port: 80, url: 'inet://localhost:80' });
  assert.deepEqual(ok('inet://mail.example.org:25'), { kind: 'inet', family: 4, host: 'mail.example.org', port: 25, url: 'inet://mail.example.org:25' });
  assert.deepEqual(ok('inet://a-b:1'), { kind: 'inet', family: 4, host: 'a-b', port: 1, url: 'inet://a-b:1' });
});

test('inet: an omitted host means every IPv4 address', () => {
  assert.deepEqual(ok('inet://:7000'), { kind: 'inet', family: 4, host: '0.0.0.0', port: 7000, url: 'inet://:7000' });
});

test('inet: a service name as port, looked up in the given services map', () => {
  assert.deepEqual(ok('inet://0.0.0.0:echo'), { kind: 'inet', family: 4, host: '0.0.0.0', port: 7, portName: 'echo', url: 'inet://0.0.0.0:echo' });
  assert.deepEqual(ok('inet://:http'), { kind: 'inet', family: 4, host: '0.0.0.0', port: 80, portName: 'http', url: 'inet://:http' });
  // Only the map passed in counts: nothing is read from /etc/services here.
  err('inet://0.0.0.0:echo', /unknown service name "echo"/, new Map());
  // The default map is empty.
  assert.ok('error' in parseSocketAddress('inet://0.0.0.0:echo'));
});

test('inet: an unknown service name is refused', () => {
  err('inet://127.0.0.1:nosuchservice', /unknown service name "nosuchservice"/);
  err('inet://127.0.0.1:-1', /unknown service name/);
});

test('inet: a port above 65535 is refused', () => {
  err('inet://127.0.0.1:65536', /out of range/);
  err('inet://127.0.0.1:99999999999999999999', /out of range/);
});

test('inet: a missing port is refused', () => {
  err('inet://127.0.0.1', /no port/);
  err('inet://127.0.0.1:', /no port/);
  err('inet://', /no port/);
  err('inet://localhost', /no port/);
});

test('inet: a host that is neither an IPv4 address nor a host name is refused', () => {
  err('inet://bad_host:80', /neither an IPv4 address nor a host name/);
  err('inet://-lead:80', /neither/);
  err('inet://trail-:80', /neither/);
  err('inet://a b:80', /neither/);
});

test('inet: a bracketed IPv6 address under inet:// is taken as inet6', () => {
  assert.deepEqual(ok('inet://[::1]:80'), { kind: 'inet', family: 6, host: '::1', port: 80, url: 'inet://[::1]:80' });
});

test('inet: an unbracketed IPv6 address is refused (where would the port start?)', () => {
  err('inet://::1:7000', /brackets/);
});

// ---- inet6 ---------------------------------------------------------------------------------

test('inet6: bracketed addresses', () => {
  assert.deepEqual(ok('inet6://[::1]:80'), { kind: 'inet', family: 6, host: '::1', port: 80, url: 'inet6://[::1]:80' });
  assert.deepEqual(ok('inet6://[::]:7000'), { kind: 'inet', family: 6, host: '::', port: 7000, url: 'inet6://[::]:7000' });
  assert.deepEqual(ok('inet6://[fe80::1:2]:echo'), { kind: 'inet', family: 6, host: 'fe80::1:2', port: 7, portName: 'echo', url: 'inet6://[fe80::1:2]:echo' });
  assert.deepEqual(ok('inet6://[::ffff:10.0.0.1]:22'), { kind: 'inet', family: 6, host: '::ffff:10.0.0.1', port: 22, url: 'inet6://[::ffff:10.0.0.1]:22' });
});

test('inet6: an omitted host means every IPv6 address', () => {
  assert.deepEqual(ok('inet6://:7000'), { kind: 'inet', family: 6, host: '::', port: 7000, url: 'inet6://:7000' });
  // Empty brackets are not an address: leave the brackets out instead.
  err('inet6://[]:7000', /not an IPv6 address/);
});

test('inet6: unbracketed addresses are refused', () => {
  err('inet6://::1:80', /brackets/);
  err('inet6://::1', /brackets/);
  err('inet6://fe80::1:7000', /brackets/);
});

test('inet6: a bracketed non-IPv6 address, or a host name, is refused', () => {
  err('inet6://[127.0.0.1]:80', /not an IPv6 address/);
  err('inet6://[localhost]:80', /not an IPv6 address/);
  err('inet6://localhost:80', /not an IPv6 address/);
  err('inet6://127.0.0.1:80', /not an IPv6 address/);
});

test('inet6: port rules are the same as for inet', () => {
  err('inet6://[::1]', /no port/);
  err('inet6://[::1]:', /no port/);
  err('inet6://[::1]:65536', /out of range/);
  err('inet6://[::1]:nosuch', /unknown service name/);
});

// ---- protocols -----------------------------------------------------------------------------

test('inet+tcp is plain inet', () => {
  assert.deepEqual(ok('inet+tcp://127.0.0.1:80'), { kind: 'inet', family: 4, host: '127.0.0.1', port: 80, url: 'inet+tcp://127.0.0.1:80' });
  assert.deepEqual(ok('inet6+tcp://[::1]:80'), { kind: 'inet', family: 6, host: '::1', port: 80, url: 'inet6+tcp://[::1]:80' });
  assert.deepEqual(ok('INET+TCP://127.0.0.1:80'), { kind: 'inet', family: 4, host: '127.0.0.1', port: 80, url: 'INET+TCP://127.0.0.1:80' });
});

test('inet+udp (and any other protocol) is refused as unsupported, not as a mistake', () => {
  const udp = err('inet+udp://127.0.0.1:80', /"udp" is not supported/);
  assert.equal(udp.unsupported, true);
  const udp6 = err('inet6+udp://[::1]:80', /"udp"/);
  assert.equal(udp6.unsupported, true);
  const sctp = err('inet+sctp://127.0.0.1:80', /"sctp"/);
  assert.equal(sctp.unsupported, true);
  // A plain mistake is not flagged as unsupported.
  assert.equal(err('inet://127.0.0.1:65536').unsupported, undefined);
});

// ---- unix ----------------------------------------------------------------------------------

test('unix, local and file name a socket file', () => {
  assert.deepEqual(ok('unix:///run/tpies.sock'), { kind: 'unix', path: '/run/tpies.sock', url: 'unix:///run/tpies.sock' });
  assert.deepEqual(ok('local:///run/a.sock'), { kind: 'unix', path: '/run/a.sock', url: 'local:///run/a.sock' });
  assert.deepEqual(ok('file:///run/b.sock'), { kind: 'unix', path: '/run/b.sock', url: 'file:///run/b.sock' });
});

test('unix: user, group, mode and umask arguments', () => {
  assert.deepEqual(ok('unix:///run/s.sock;user=daemon;group=adm;mode=660;umask=027'), {
    kind: 'unix',
    path: '/run/s.sock',
    user: 'daemon',
    group: 'adm',
    mode: 0o660,
    umask: 0o027,
    url: 'unix:///run/s.sock;user=daemon;group=adm;mode=660;umask=027',
  });
  assert.equal((ok('unix:///s;mode=0777') as { mode?: number }).mode, 0o777);
  assert.equal((ok('unix:///s;mode=0') as { mode?: number }).mode, 0);
  assert.equal((ok('unix:///s;umask=7') as { umask?: number }).umask, 0o7);
  // Empty arguments (a stray ";") are skipped.
  assert.deepEqual(ok('unix:///s;;mode=600;'), { kind: 'unix', path: '/s', mode: 0o600, url: 'unix:///s;;mode=600;' });
});

test('unix: mode and umask must be octal up to 777', () => {
  err('unix:///s;mode=778', /not an octal mode/);
  err('unix:///s;mode=1777', /not an octal mode/);
  err('unix:///s;mode=1000', /not an octal mode/);
  err('unix:///s;mode=rw', /not an octal mode/);
  err('unix:///s;umask=0x1f', /not an octal mode/);
  err('unix:///s;umask=00000', /not an octal mode/);
  err('unix:///s;mode=-1', /not an octal mode/);
});

test('unix: unknown or empty arguments are refused', () => {
  err('unix:///s;owner=root', /unknown unix socket argument "owner"/);
  err('unix:///s;backlog=5', /unknown unix socket argument/);
  err('unix:///s;user=', /"user".*has no value/);
  err('unix:///s;mode', /"mode".*has no value/);
});

test('unix: an empty path is refused', () => {
  err('unix://', /names no socket file/);
  err('unix://;mode=600', /names no socket file/);
  err('local://', /names no socket file/);
});

// ---- other refusals ------------------------------------------------------------------------

test('an unknown scheme is refused', () => {
  err('http://127.0.0.1:80', /unknown socket scheme "http"/);
  err('tcp://127.0.0.1:80', /unknown socket scheme "tcp"/);
});

test('text that is not a socket URL is refused', () => {
  err('127.0.0.1:80', /not a socket URL/);
  err('', /not a socket URL/);
  err('inet:/127.0.0.1:80', /not a socket URL/);
  err('/run/tpies.sock', /not a socket URL/);
});

// ---- formatting ----------------------------------------------------------------------------

test('formatSocketAddress gives the canonical URL', () => {
  assert.equal(formatSocketAddress(ok('inet://:7000')), 'inet://0.0.0.0:7000');
  assert.equal(formatSocketAddress(ok('inet+tcp://localhost:echo')), 'inet://localhost:echo');
  assert.equal(formatSocketAddress(ok('inet://[::1]:80')), 'inet6://[::1]:80');
  assert.equal(formatSocketAddress(ok('inet6://:80')), 'inet6://[::]:80');
  assert.equal(formatSocketAddress(ok('local:///s;umask=7;mode=0600;group=g;user=u')), 'unix:///s;user=u;group=g;mode=600;umask=007');
});

// Addresses as parse would return them for their canonical URL.
const hostLabel = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?$/);
const ipv4Host = fc.ipV4();
const hostName = fc.array(hostLabel, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.')).filter((h) => !/^[0-9.]+$/.test(h));
const ipv6Host = fc.ipV6();
const port = fc.oneof(fc.integer({ min: 0, max: 65535 }).map((p) => ({ port: p })), fc.constantFrom(...SERVICES).map(([name, p]) => ({ port: p, portName: name })));
const inetAddress = fc
  .record({ family: fc.constantFrom(4 as const, 6 as const), v4: fc.oneof(ipv4Host, hostName), v6: ipv6Host, port })
  .map(({ family, v4, v6, port: p }) => ({ kind: 'inet' as const, family, host: family === 4 ? v4 : v6, ...p }));
const pathSegment = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/);
const unixPath = fc.array(pathSegment, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
const name = fc.stringMatching(/^[a-z_][a-z0-9_-]{0,15}$/);
const mode = fc.integer({ min: 0, max: 0o777 });
const unixAddress = fc
  .record({ path: unixPath, user: name, group: name, mode, umask: mode }, { requiredKeys: ['path'] })
  .map((a) => ({ kind: 'unix' as const, ...a }));
const address = fc.oneof(inetAddress, unixAddress).map((a) => ({ ...a, url: formatSocketAddress({ ...a, url: '' } as SocketAddress) }) as SocketAddress);

test('parse(format(a)) gives a back (property)', () => {
  fc.assert(
    fc.property(address, (a) => {
      const r = parseSocketAddress(formatSocketAddress(a), SERVICES);
      assert.ok('address' in r, `${formatSocketAddress(a)}: ${'error' in r ? r.error : ''}`);
      assert.deepEqual(r.address, a);
    }),
    { numRuns: 500 },
  );
});

test('format is a fixed point: format(parse(format(a))) = format(a) (property)', () => {
  fc.assert(
    fc.property(address, (a) => {
      const text = formatSocketAddress(a);
      const r = parseSocketAddress(text, SERVICES);
      assert.ok('address' in r);
      assert.equal(formatSocketAddress(r.address), text);
    }),
    { numRuns: 200 },
  );
});

// ---- /etc/services -------------------------------------------------------------------------

test('parseServicesFile reads name, port/tcp and aliases; ignores comments and udp', () => {
  const text = [
    '# Network services, Internet style',
    '',
    'tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer',
    'echo\t\t7/tcp',
    'echo\t\t7/udp',
    'discard\t\t9/tcp\t\tsink null',
    'discard\t\t9/udp\t\tsink null',
    'syslog\t\t514/udp',
    '   # indented comment 99/tcp',
    'http\t\t80/tcp\t\twww # WorldWideWeb HTTP',
    'weird 80/tcpx',
    'noport',
    'ntp 123/udp ntpd',
    'bad abc/tcp',
    'crlf 21/tcp ftp-alias\r',
  ].join('\n');
  const services = parseServicesFile(text);
  assert.deepEqual(
    [...services].sort(([a], [b]) => a.localeCompare(b)),
    [
      ['crlf', 21],
      ['discard', 9],
      ['echo', 7],
      ['ftp-alias', 21],
      ['http', 80],
      ['null', 9],
      ['sink', 9],
      ['tcpmux', 1],
      ['www', 80],
    ],
  );
  assert.equal(services.has('syslog'), false, 'udp-only services are ignored');
  assert.equal(services.has('ntpd'), false, 'udp aliases are ignored');
  assert.equal(services.has('weird'), false);
});

test('parseServicesFile keeps the first port for a name given twice', () => {
  const services = parseServicesFile('a 10/tcp b\nb 20/tcp\na 30/tcp\n');
  assert.equal(services.get('a'), 10);
  assert.equal(services.get('b'), 10);
});

test('parseServicesFile of an empty file is an empty map', () => {
  assert.equal(parseServicesFile('').size, 0);
  assert.equal(parseServicesFile('# only\n#comments\n\n').size, 0);
});

test('a services map from the file resolves service names in URLs', () => {
  const services = parseServicesFile('smtp 25/tcp mail\n');
  assert.deepEqual(ok('inet://:mail', services), { kind: 'inet', family: 4, host: '0.0.0.0', port: 25, portName: 'mail', url: 'inet://:mail' });
});
