// Access control end to end (pies manual, ACL and TCPMUX; docs/acl.md): the order global →
// component (or master) → subordinate, what a refused client gets on the wire, IPv4-mapped
// peers on dual-stack sockets, IPv6 clients against IPv4 rules, defacl references, unix
// socket peers, and the audit event naming the rule that decided.
import assert from 'node:assert/strict';
import { type Socket, connect } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import type { LogEntry } from '../../src/log/logger.js';
import { startTestDaemon, waitFor } from '../helpers/daemon.js';
import { exchange } from '../helpers/tcp-client.js';

function audits(logs: readonly LogEntry[], component?: string): LogEntry[] {
  return logs.filter((e) => e.msg === 'connection' && (component === undefined || e.component === component));
}

// The 1-based line of `marker` in `config` (the text given to startTestDaemon starts with a
// newline, as written here, so lines match the file).
function lineOf(config: string, marker: string): number {
  const index = config.indexOf(marker);
  assert.ok(index !== -1, `marker ${marker}`);
  return config.slice(0, index).split('\n').length;
}

// A connection from a given address family whose own port we know.
async function connected(port: number, host: string): Promise<{ socket: Socket; localPort: number; closed: Promise<string>; received: () => string }> {
  const socket = connect({ port, host });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<string>((resolve) => {
    socket.on('end', () => resolve('end'));
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNRESET' ? 'reset' : 'error'));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, localPort: socket.localPort ?? 0, closed, received: () => Buffer.concat(chunks).toString('latin1') };
}

// ---- order: global → master → subordinate ---------------------------------------------------

const GLOBAL_DENY = `
acl {
  deny from 127.0.0.1; # GLOBAL-DENY
  allow any;
}
component tcpmux {
  socket inet://127.0.0.1:0;
  service tcpmux;
  flags internal;
  acl { allow any; }
  access-denied-message "go away\\r\\n";
}
component echo { tcpmux-master tcpmux; service echo; flags tcpmuxplus; command /bin/cat; acl { allow from 127.0.0.1; } }
component plain { socket inet://127.0.0.1:0; command /bin/cat; acl { allow from 127.0.0.1; } }
`;

test('a global deny closes the connection before anything is read, whatever the component allows', async (t) => {
  const d = await startTestDaemon(t, GLOBAL_DENY);
  const r = await exchange({ port: d.port('tcpmux'), send: ['echo\r\nsecret'] });
  // The master's access-denied-message as configured, not a TCPMUX `-` line, then FIN.
  assert.equal(r.data.toString('latin1'), 'go away\r\n');
  assert.equal(r.closed, 'end');
  const plain = await exchange({ port: d.port('plain'), send: ['data'], halfClose: true });
  assert.equal(plain.data.length, 0);
  assert.equal(plain.closed, 'end');
  await waitFor(() => audits(d.logs).length === 2, 5000, 'two audit events');
  for (const e of audits(d.logs)) {
    assert.equal(e.outcome, 'denied');
    assert.equal(e.acl, 'deny');
    assert.match(String(e.aclRule), new RegExp(`^deny by .*tpies\\.conf:${lineOf(GLOBAL_DENY, 'deny from 127.0.0.1; # GLOBAL-DENY')}:\\d+$`));
    // Nothing was read: no service name, no child.
    assert.equal(e.service, undefined);
    assert.equal(e.childPid, undefined);
  }
  assert.equal(d.daemon.instances('echo'), 0);
  assert.equal(d.daemon.instances('plain'), 0);
});

const LEVELS = `
component closed-master {
  socket inet://127.0.0.1:0;
  service tcpmux;
  flags internal;
  acl { deny from 127.0.0.0/8; } # MASTER-DENY
}
component closed-sub { tcpmux-master closed-master; service open; flags tcpmuxplus; command /bin/cat; acl { allow any; } }
component told-master {
  socket inet://127.0.0.1:0;
  service tcpmux;
  flags internal;
  acl { deny any; }
  access-denied-message "master says no";
}
component told-sub { tcpmux-master told-master; service open; flags tcpmuxplus; command /bin/cat; }
component tcpmux {
  socket inet://127.0.0.1:0;
  service tcpmux;
  flags internal;
  acl { allow from 127.0.0.1; deny any; }
}
component allowed { tcpmux-master tcpmux; service allowed; flags tcpmuxplus; command /bin/cat; acl { allow from 127.0.0.1; deny any; } }
component open { tcpmux-master tcpmux; service open; flags tcpmuxplus; command /bin/cat; }
component denied { tcpmux-master tcpmux; service denied; flags tcpmuxplus; command /bin/cat; acl { deny from 127.0.0.1; } } # SUB-DENY
component polite {
  tcpmux-master tcpmux;
  service polite;
  flags tcpmuxplus;
  command /bin/cat;
  acl { deny any; }
  access-denied-message "not for you\\r\\nsecond line";
}
component v6only { tcpmux-master tcpmux; service v6only; flags tcpmuxplus; command /bin/cat; acl { allow from ::1; deny any; } }
component plain {
  socket inet://127.0.0.1:0;
  command /bin/cat;
  acl { deny any; }
  access-denied-message "plain: denied\\r\\n";
}
`;

test('master and subordinate ACLs: closed before reading, then a `-` reply after the name', async (t) => {
  const d = await startTestDaemon(t, LEVELS);

  await t.test('master deny: closed, nothing read, no reply line', async () => {
    const r = await exchange({ port: d.port('closed-master'), send: ['open\r\n'] });
    assert.equal(r.data.length, 0);
    assert.equal(r.closed, 'end');
    await waitFor(() => audits(d.logs, 'closed-master').length === 1, 5000, 'the audit event');
    const e = audits(d.logs, 'closed-master')[0]!;
    assert.equal(e.outcome, 'denied');
    assert.equal(e.service, undefined);
    assert.match(String(e.aclRule), new RegExp(`^deny by .*:${lineOf(LEVELS, 'acl { deny from 127.0.0.0/8; } # MASTER-DENY')}:\\d+$`));
  });

  await t.test("master deny with the master's access-denied-message", async () => {
    const r = await exchange({ port: d.port('told-master'), send: ['open\r\n'] });
    assert.equal(r.data.toString('latin1'), 'master says no');
    assert.equal(r.closed, 'end');
  });

  await t.test('subordinate deny: `-Access denied`, then FIN', async () => {
    const r = await exchange({ port: d.port('tcpmux'), send: ['denied\r\npayload'] });
    assert.equal(r.data.toString('latin1'), '-Access denied\r\n');
    assert.equal(r.closed, 'end');
    assert.equal(d.daemon.instances('denied'), 0);
  });

  await t.test("subordinate deny with its access-denied-message, one line of printable ASCII", async () => {
    const r = await exchange({ port: d.port('tcpmux'), send: ['POLITE\r\n'] });
    assert.equal(r.data.toString('latin1'), '-not for you second line\r\n');
    assert.equal(r.closed, 'end');
  });

  await t.test('allowed at every level: served', async () => {
    for (const name of ['allowed', 'open']) {
      const r = await exchange({ port: d.port('tcpmux'), send: [`${name}\r\nhi`], halfClose: true });
      assert.equal(r.data.toString('latin1'), '+\r\nhi', name);
      assert.equal(r.closed, 'end');
    }
  });

  await t.test('an IPv6-only subordinate ACL refuses an IPv4 client', async () => {
    const r = await exchange({ port: d.port('tcpmux'), send: ['v6only\r\n'] });
    assert.equal(r.data.toString('latin1'), '-Access denied\r\n');
  });

  await t.test('help lists only the subordinates this client may use', async () => {
    const r = await exchange({ port: d.port('tcpmux'), send: ['help\r\n'] });
    assert.equal(r.data.toString('latin1'), 'allowed\r\nopen\r\n');
    assert.equal(r.closed, 'end');
  });

  await t.test('an inetd component deny sends access-denied-message and starts nothing', async () => {
    const r = await exchange({ port: d.port('plain'), send: ['data'], halfClose: true });
    assert.equal(r.data.toString('latin1'), 'plain: denied\r\n');
    assert.equal(r.closed, 'end');
    await waitFor(() => audits(d.logs, 'plain').length === 1, 5000, 'the audit event');
    assert.equal(audits(d.logs, 'plain')[0]!.outcome, 'denied');
    assert.equal(audits(d.logs, 'plain')[0]!.childPid, undefined);
  });

  await t.test('audit events of subordinate denials name the service and the rule', async () => {
    await waitFor(() => audits(d.logs, 'tcpmux').filter((e) => e.outcome === 'denied').length === 3, 5000, 'three denials');
    const denied = audits(d.logs, 'tcpmux').filter((e) => e.outcome === 'denied');
    assert.deepEqual(denied.map((e) => e.subordinate).sort(), ['denied', 'polite', 'v6only']);
    const sub = denied.find((e) => e.subordinate === 'denied')!;
    assert.equal(sub.service, 'denied');
    assert.equal(sub.acl, 'deny');
    assert.match(String(sub.aclRule), new RegExp(`^deny by .*:${lineOf(LEVELS, 'service denied;')}:\\d+$`));
  });
});

// ---- address families -------------------------------------------------------------------------

const DUAL = `
component v4rule { socket "inet6://[::]:0"; flags internal; service echo; acl { allow from 127.0.0.0/8; deny any; } }
component v6none { socket "inet6://[::]:0"; flags internal; service echo; acl { deny from "::/0"; allow any; } }
component v4all { socket "inet6://[::]:0"; flags internal; service echo; acl { allow from 0.0.0.0/0; deny any; } }
component mapped-rule { socket "inet6://[::]:0"; flags internal; service echo; acl { allow from "::ffff:127.0.0.0/104"; deny any; } }
component tcpmux { socket "inet6://[::]:0"; service tcpmux; flags internal; acl { allow from 127.0.0.1; deny any; } }
component echo { tcpmux-master tcpmux; service echo; flags (tcpmuxplus, sockenv); command /bin/cat; acl { deny from "::/0"; } }
component env { tcpmux-master tcpmux; service env; flags (tcpmuxplus, sockenv); command /usr/bin/env; }
`;

test('IPv4-mapped peers are IPv4; IPv6 clients never match IPv4 rules', async (t) => {
  const d = await startTestDaemon(t, DUAL);
  const echoes = async (tag: string, host: string): Promise<boolean> => {
    const r = await exchange({ host, port: d.port(tag), send: ['ping'], halfClose: true });
    return r.data.toString('latin1') === 'ping' && r.closed === 'end';
  };

  await t.test('127.0.0.1 on a dual-stack socket matches `allow from 127.0.0.0/8`', async () => {
    assert.equal(await echoes('v4rule', '127.0.0.1'), true);
    assert.equal(await echoes('v4rule', '::1'), false);
  });

  await t.test('`deny from ::/0` does not match an IPv4-mapped client', async () => {
    assert.equal(await echoes('v6none', '127.0.0.1'), true);
    assert.equal(await echoes('v6none', '::1'), false);
  });

  await t.test('a ::1 client against `allow from 0.0.0.0/0; deny any;` is denied', async () => {
    assert.equal(await echoes('v4all', '::1'), false);
    assert.equal(await echoes('v4all', '127.0.0.1'), true);
  });

  await t.test('an IPv4-mapped rule (::ffff:127.0.0.0/104) is an IPv4 rule', async () => {
    assert.equal(await echoes('mapped-rule', '127.0.0.1'), true);
    assert.equal(await echoes('mapped-rule', '::1'), false);
  });

  await t.test('through a dual-stack TCPMUX master: master and subordinate ACLs see 127.0.0.1', async () => {
    const r = await exchange({ host: '127.0.0.1', port: d.port('tcpmux'), send: ['echo\r\nmapped'], halfClose: true });
    assert.equal(r.data.toString('latin1'), '+\r\nmapped');
    const v6 = await exchange({ host: '::1', port: d.port('tcpmux'), send: ['echo\r\n'] });
    assert.equal(v6.data.length, 0);
    assert.equal(v6.closed, 'end');
  });

  await t.test('sockenv shows the mapped client as IPv4', async () => {
    const c = await connected(d.port('tcpmux'), '127.0.0.1');
    c.socket.write('env\r\n');
    assert.equal(await c.closed, 'end');
    c.socket.destroy();
    const env = c.received();
    assert.ok(env.startsWith('+\r\n'));
    assert.match(env, /^REMOTEIP=127\.0\.0\.1$/m);
    assert.match(env, new RegExp(`^REMOTEPORT=${c.localPort}$`, 'm'));
    assert.match(env, /^LOCALIP=127\.0\.0\.1$/m);
    assert.match(env, new RegExp(`^LOCALPORT=${d.port('tcpmux')}$`, 'm'));
  });

  await t.test('audit peers: mapped clients as a.b.c.d:port, IPv6 as [addr]:port', async () => {
    const v4 = await connected(d.port('v6none'), '127.0.0.1');
    v4.socket.end();
    await v4.closed;
    v4.socket.destroy();
    const v6 = await connected(d.port('v6none'), '::1');
    v6.socket.end();
    await v6.closed;
    v6.socket.destroy();
    await waitFor(() => audits(d.logs, 'v6none').length === 4, 5000, 'four v6none events');
    const peers = audits(d.logs, 'v6none').map((e) => e.peer);
    assert.ok(peers.includes(`127.0.0.1:${v4.localPort}`), JSON.stringify(peers));
    assert.ok(peers.includes(`[::1]:${v6.localPort}`), JSON.stringify(peers));
    const denied = audits(d.logs, 'v6none').filter((e) => e.outcome === 'denied');
    assert.ok(denied.length === 2 && denied.every((e) => String(e.peer).startsWith('[::1]:')));
  });
});

test('an IPv6-only listener and IPv4 rules', async (t) => {
  const d = await startTestDaemon(
    t,
    `
component v6 { socket "inet6://[::1]:0"; flags internal; service echo; acl { allow from 0.0.0.0/0; deny any; } }
component v6ok { socket "inet6://[::1]:0"; flags internal; service echo; acl { allow from ::1; deny any; } }
`,
  );
  const denied = await exchange({ host: '::1', port: d.port('v6'), send: ['x'], halfClose: true });
  assert.equal(denied.data.length, 0);
  assert.equal(denied.closed, 'end');
  const allowed = await exchange({ host: '::1', port: d.port('v6ok'), send: ['x'], halfClose: true });
  assert.equal(allowed.data.toString('latin1'), 'x');
});

// ---- defacl references ----------------------------------------------------------------------

const DEFACLS = `
defacl locals { allow acl v4loop; allow from ::1; deny any; }
defacl v4loop { allow from 127.0.0.0/8; deny any; } # V4LOOP
component named { socket "inet6://[::]:0"; flags internal; service echo; acl v4loop; }
component nested { socket "inet6://[::]:0"; flags internal; service echo; acl locals; }
component inverted { socket "inet6://[::]:0"; flags internal; service echo; acl { deny acl v4loop; allow any; } } # INVERTED
component both { socket "inet6://[::]:0"; flags internal; service echo; acl { allow acl v4loop from 127.0.0.1; deny any; } }
`;

test('defacl references: by name, nested, inside entries', async (t) => {
  const d = await startTestDaemon(t, DEFACLS);
  const echoes = async (tag: string, host: string): Promise<boolean> => {
    const r = await exchange({ host, port: d.port(tag), send: ['ping'], halfClose: true });
    return r.data.toString('latin1') === 'ping';
  };
  assert.deepEqual([await echoes('named', '127.0.0.1'), await echoes('named', '::1')], [true, false]);
  assert.deepEqual([await echoes('nested', '127.0.0.1'), await echoes('nested', '::1')], [true, true]);
  // `deny acl v4loop`: matches when v4loop allows; for ::1 v4loop denies, so the entry does not apply.
  assert.deepEqual([await echoes('inverted', '127.0.0.1'), await echoes('inverted', '::1')], [false, true]);
  assert.deepEqual([await echoes('both', '127.0.0.1'), await echoes('both', '::1')], [true, false]);

  await waitFor(() => audits(d.logs).length === 8, 5000, 'eight audit events');
  const inverted = audits(d.logs, 'inverted').find((e) => e.outcome === 'denied')!;
  // The deciding entry, then the defacl it went through and that defacl's allowing entry.
  assert.match(
    String(inverted.aclRule),
    new RegExp(`^deny by .*:${lineOf(DEFACLS, 'component inverted')}:\\d+ via acl v4loop \\(.*:${lineOf(DEFACLS, '# V4LOOP')}:\\d+\\)$`),
  );
  const named = audits(d.logs, 'named').find((e) => e.outcome === 'denied')!;
  assert.match(String(named.aclRule), new RegExp(`^deny by .*:${lineOf(DEFACLS, '# V4LOOP')}:\\d+$`));
});

test('a global ACL that references a defacl', async (t) => {
  const d = await startTestDaemon(
    t,
    `
defacl v4loop { allow from 127.0.0.0/8; }
acl { allow acl v4loop; deny any; }
component echo { socket "inet6://[::]:0"; flags internal; service echo; }
`,
  );
  const v4 = await exchange({ host: '127.0.0.1', port: d.port('echo'), send: ['a'], halfClose: true });
  assert.equal(v4.data.toString('latin1'), 'a');
  const v6 = await exchange({ host: '::1', port: d.port('echo'), send: ['a'], halfClose: true });
  assert.equal(v6.data.length, 0);
  assert.equal(v6.closed, 'end');
});

// ---- unix socket peers ----------------------------------------------------------------------

const UNIX = `
component mine { socket "unix://{{dir}}/s.sock;mode=600"; flags internal; service echo; acl { allow from "{{dir}}/s.sock"; deny any; } }
component elsewhere { socket "unix://{{dir}}/t.sock"; flags internal; service echo; acl { allow from "{{dir}}/s.sock"; deny any; } }
component inet-any { socket "unix://{{dir}}/u.sock"; flags internal; service echo; acl { allow from 0.0.0.0/0; allow from ::/0; deny any; } }
component tcp { socket inet://127.0.0.1:0; flags internal; service echo; acl { allow from "{{dir}}/s.sock"; deny any; } }
component tcpmux { socket "unix://{{dir}}/mux.sock"; service tcpmux; flags internal; acl { allow from "{{dir}}/mux.sock"; deny any; } }
component env { tcpmux-master tcpmux; service env; flags (tcpmuxplus, sockenv); command /usr/bin/env; acl { allow from "{{dir}}/mux.sock"; deny any; } }
component other { tcpmux-master tcpmux; service other; flags tcpmuxplus; command /bin/cat; acl { allow from "{{dir}}/s.sock"; deny any; } }
`;

test('unix socket peers match their own socket path, and nothing else', async (t) => {
  const d = await startTestDaemon(t, UNIX);
  const sock = (name: string): string => path.join(d.dir, name);
  const mine = await exchange({ path: sock('s.sock'), send: ['hi'], halfClose: true });
  assert.equal(mine.data.toString('latin1'), 'hi');
  const elsewhere = await exchange({ path: sock('t.sock'), send: ['hi'], halfClose: true });
  assert.equal(elsewhere.data.length, 0);
  assert.equal(elsewhere.closed, 'end');
  const inet = await exchange({ path: sock('u.sock'), send: ['hi'], halfClose: true });
  assert.equal(inet.data.length, 0);
  const tcp = await exchange({ port: d.port('tcp'), send: ['hi'], halfClose: true });
  assert.equal(tcp.data.length, 0);

  // A TCPMUX master on a unix socket: its subordinates' ACLs see the same peer.
  const env = await exchange({ path: sock('mux.sock'), send: ['env\r\n'] });
  const text = env.data.toString('latin1');
  assert.ok(text.startsWith('+\r\n'), text);
  assert.match(text, /^PROTO=unix$/m);
  assert.match(text, /^SOCKTYPE=stream$/m);
  assert.doesNotMatch(text, /^REMOTEIP=/m);
  const other = await exchange({ path: sock('mux.sock'), send: ['other\r\n'] });
  assert.equal(other.data.toString('latin1'), '-Access denied\r\n');
  const help = await exchange({ path: sock('mux.sock'), send: ['help\r\n'] });
  assert.equal(help.data.toString('latin1'), 'env\r\n');

  await waitFor(() => audits(d.logs, 'elsewhere').length === 1, 5000, 'the audit event');
  const e = audits(d.logs, 'elsewhere')[0]!;
  assert.equal(e.outcome, 'denied');
  assert.equal(e.peer, `unix:${sock('t.sock')}`);
  assert.equal(audits(d.logs, 'mine')[0]?.outcome, 'served');
});
