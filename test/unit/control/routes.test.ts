// Unit tests of the control API's pure handlers: every route and method, permission checks,
// validation of tags, addresses and query parameters, dry-run versus reload, and the error
// table. The target is a plain object implementing ControlTarget (no sockets involved).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { CONTROL_ERRORS, type ControlErrorCode, type ControlPeer, type ControlResponse, type ControlTarget, handleRequest, isValidName } from '../../../src/control/routes.js';
import type { AclTestResult, ComponentInfo, ReloadResult } from '../../../src/daemon.js';

const NOW = 1_000_000;
const ADMIN: ControlPeer = { kind: 'unix', admin: true };
const READER: ControlPeer = { kind: 'inet', admin: false };

const PLAN = {
  entries: [
    { tag: 'web', action: 'restart', reasons: ['command', 'env'] },
    { tag: 'echo', action: 'keep', reasons: ['unchanged'] },
    { tag: 'new', action: 'start', reasons: ['new'] },
  ],
} as const;

const DIAGNOSTICS = 'error: unknown statement "comand" [unknown-statement]\n --> /etc/tpies.conf:2:3\n1 error\n';

interface Fake {
  readonly target: ControlTarget;
  readonly calls: string[];
  reloadResult: ReloadResult;
  fail: boolean;
}

function fake(): Fake {
  const components: ComponentInfo[] = [
    { tag: 'web', mode: 'respawn', state: 'running', pid: 100, since: NOW - 5000, restarts: 2 },
    { tag: 'echo', mode: 'inetd', state: 'listening', since: NOW - 5000, restarts: 0, instances: 1, socket: 'inet://127.0.0.1:7' },
    { tag: 'tcpmux', mode: 'inetd', state: 'listening', since: NOW - 5000, restarts: 0, instances: 0, socket: 'inet://127.0.0.1:1' },
    { tag: 'help-svc', mode: 'inetd', state: 'listening', since: NOW - 5000, restarts: 0, instances: 0, service: 'Help', master: 'tcpmux' },
    { tag: 'nap', mode: 'respawn', state: 'sleeping', since: NOW - 100, restarts: 11, wakeAt: NOW + 4500, lastExit: { exitCode: 1, at: NOW - 100 } },
    { tag: 'off', mode: 'respawn', state: 'disabled', since: 0, restarts: 0 },
    { tag: 'a b', mode: 'respawn', state: 'stopped', since: 0, restarts: 0 },
  ];
  const known = (tag: string): ComponentInfo | undefined => components.find((c) => c.tag === tag);
  const state: Fake = {
    calls: [],
    reloadResult: { ok: true, plan: PLAN },
    fail: false,
    target: {
      info: () => {
        if (state.fail) throw new Error('boom');
        return { pid: 4242, version: '9.9.9', configFile: '/etc/tpies.conf', startedAt: 500, argv: ['node', 'tpies', '-c', '/etc/tpies.conf'] };
      },
      components: () => components,
      reload: async () => {
        state.calls.push('reload');
        return state.reloadResult;
      },
      planReload: async () => {
        state.calls.push('planReload');
        return state.reloadResult;
      },
      stop: async () => {
        state.calls.push('stop');
      },
      startComponent: async (tag) => act('start', tag),
      stopComponent: async (tag) => act('stop', tag),
      restartComponent: async (tag) => act('restart', tag),
      aclTest: (address, target): AclTestResult | { error: string } => {
        state.calls.push(`aclTest ${address} ${target ?? '-'}`);
        if (target !== undefined && !known(target) && target.toLowerCase() !== 'help') return { error: `no component or TCPMUX service named "${target}"` };
        const deny = address.startsWith('10.');
        return {
          decision: deny ? 'deny' : 'allow',
          levels: [
            { acl: 'global', decision: 'no-acl', rule: 'no ACL: allowed' },
            { acl: `component "${target ?? 'x'}"`, decision: deny ? 'deny' : 'allow', rule: deny ? 'deny by t.conf:3:5' : 'allow by t.conf:2:5' },
          ],
        };
      },
    },
  };
  // Like the daemon: a TCPMUX subordinate has nothing to start or stop.
  function act(action: string, tag: string): boolean {
    state.calls.push(`${action} ${tag}`);
    const c = known(tag);
    return c !== undefined && c.master === undefined;
  }
  return state;
}

const req = (f: Fake, method: string, path: string, peer: ControlPeer = ADMIN, query = ''): Promise<ControlResponse> => handleRequest(f.target, { method, path, query: new URLSearchParams(query), peer }, NOW);

type Body = Record<string, unknown>;
const bodyOf = (r: ControlResponse): Body => r.body as Body;

// An error answer: the status of its code in the one table, status "ER", a message.
function assertError(r: ControlResponse, code: ControlErrorCode, message?: RegExp): void {
  const body = bodyOf(r);
  assert.equal(body.status, 'ER', JSON.stringify(body));
  assert.equal(body.code, code, JSON.stringify(body));
  assert.equal(r.status, CONTROL_ERRORS[code].status);
  assert.equal(typeof body.message, 'string');
  if (message) assert.match(String(body.message), message);
}

describe('/instance', () => {
  test('GET: package, version, pid, argv, config file, start time', async () => {
    const r = await req(fake(), 'GET', '/instance', READER);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { package: 'tpies', version: '9.9.9', pid: 4242, argv: ['node', 'tpies', '-c', '/etc/tpies.conf'], configFile: '/etc/tpies.conf', startedAt: 500 });
  });

  test('GET /instance/KEY: one attribute; an unknown one is 404', async () => {
    const f = fake();
    assert.deepEqual((await req(f, 'GET', '/instance/version')).body, { version: '9.9.9' });
    assert.deepEqual((await req(f, 'GET', '/instance/pid')).body, { pid: 4242 });
    assertError(await req(f, 'GET', '/instance/colour'), 'ERR_NOT_FOUND', /no instance attribute "colour"/);
  });

  test('DELETE: replies first, stops in `after`', async () => {
    const f = fake();
    const r = await req(f, 'DELETE', '/instance');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'OK', message: 'tpies (pid 4242) is shutting down' });
    assert.deepEqual(f.calls, []);
    await r.after?.();
    assert.deepEqual(f.calls, ['stop']);
  });

  test('DELETE /instance/PID stops only this pid', async () => {
    const f = fake();
    const r = await req(f, 'DELETE', '/instance/4242');
    assert.equal(r.status, 200);
    assert.ok(r.after);
    assertError(await req(f, 'DELETE', '/instance/4243'), 'ERR_NOT_FOUND', /pid 4242, not 4243/);
    assertError(await req(f, 'DELETE', '/instance/abc'), 'ERR_BAD_REQUEST', /not a pid/);
  });

  test('DELETE needs admin', async () => {
    const f = fake();
    const r = await req(f, 'DELETE', '/instance', READER);
    assertError(r, 'ERR_FORBIDDEN', /admin-acl/);
    assert.equal(r.after, undefined);
  });

  test('PUT and POST are not methods of /instance', async () => {
    const r = await req(fake(), 'PUT', '/instance');
    assertError(r, 'ERR_METHOD', /PUT is not allowed on \/instance \(allowed: GET, DELETE\)/);
    assert.deepEqual(r.headers, { Allow: 'GET, DELETE' });
  });
});

describe('/conf/runtime and /conf/check', () => {
  test('PUT reloads and answers with the plan', async () => {
    const f = fake();
    const r = await req(f, 'PUT', '/conf/runtime');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'OK', message: 'configuration reloaded', plan: PLAN.entries.map((e) => ({ ...e, reasons: [...e.reasons] })) });
    assert.deepEqual(f.calls, ['reload']);
  });

  test('PUT with a broken config: 422 ERR_CONFIG_INVALID with the diagnostics', async () => {
    const f = fake();
    f.reloadResult = { ok: false, errors: DIAGNOSTICS };
    const r = await req(f, 'PUT', '/conf/runtime');
    assertError(r, 'ERR_CONFIG_INVALID', /nothing was changed/);
    assert.equal(bodyOf(r).errors, DIAGNOSTICS);
  });

  test('PUT needs admin', async () => {
    const f = fake();
    assertError(await req(f, 'PUT', '/conf/runtime', READER), 'ERR_FORBIDDEN');
    assert.deepEqual(f.calls, []);
  });

  for (const query of ['dry-run', 'dry-run=', 'dry-run=true', 'dry-run=1']) {
    test(`GET ?${query} plans without applying, for readers too`, async () => {
      const f = fake();
      const r = await req(f, 'GET', '/conf/runtime', READER, query);
      assert.equal(r.status, 200);
      assert.equal(bodyOf(r).message, 'dry run: nothing was changed');
      assert.equal((bodyOf(r).plan as unknown[]).length, 3);
      assert.deepEqual(f.calls, ['planReload']);
    });
  }

  test('GET dry-run with a broken config: 422, nothing called but planReload', async () => {
    const f = fake();
    f.reloadResult = { ok: false, errors: DIAGNOSTICS };
    const r = await req(f, 'GET', '/conf/runtime', ADMIN, 'dry-run');
    assertError(r, 'ERR_CONFIG_INVALID', /a reload would change nothing/);
    assert.equal(bodyOf(r).errors, DIAGNOSTICS);
    assert.deepEqual(f.calls, ['planReload']);
  });

  test('GET without dry-run, a bad dry-run value or another parameter: 400', async () => {
    const f = fake();
    assertError(await req(f, 'GET', '/conf/runtime'), 'ERR_BAD_REQUEST', /needs \?dry-run/);
    assertError(await req(f, 'GET', '/conf/runtime', ADMIN, 'dry-run=no'), 'ERR_BAD_REQUEST', /dry-run=no/);
    assertError(await req(f, 'GET', '/conf/runtime', ADMIN, 'dry-run&force'), 'ERR_BAD_REQUEST', /unknown query parameter "force"/);
    assertError(await req(f, 'PUT', '/conf/runtime', ADMIN, 'dry-run'), 'ERR_BAD_REQUEST', /unknown query parameter "dry-run"/);
    assert.deepEqual(f.calls, []);
  });

  test('POST and DELETE are not methods of /conf/runtime', async () => {
    assertError(await req(fake(), 'POST', '/conf/runtime'), 'ERR_METHOD', /allowed: PUT, GET/);
    assertError(await req(fake(), 'DELETE', '/conf/runtime'), 'ERR_METHOD');
  });

  test('GET /conf/check: valid, or 422 with the diagnostics; never reloads', async () => {
    const f = fake();
    const r = await req(f, 'GET', '/conf/check', READER);
    assert.deepEqual(r.body, { status: 'OK', message: '/etc/tpies.conf: configuration is valid', file: '/etc/tpies.conf' });
    f.reloadResult = { ok: false, errors: DIAGNOSTICS };
    const bad = await req(f, 'GET', '/conf/check');
    assertError(bad, 'ERR_CONFIG_INVALID', /\/etc\/tpies.conf: the configuration has errors/);
    assert.equal(bodyOf(bad).errors, DIAGNOSTICS);
    assert.deepEqual(f.calls, ['planReload', 'planReload']);
    assertError(await req(f, 'PUT', '/conf/check'), 'ERR_METHOD');
  });
});

describe('/programs', () => {
  test('GET lists every component with its details', async () => {
    const r = await req(fake(), 'GET', '/programs', READER);
    assert.equal(r.status, 200);
    const list = r.body as Body[];
    assert.deepEqual(
      list.map((p) => p.tag),
      ['web', 'echo', 'tcpmux', 'help-svc', 'nap', 'off', 'a b'],
    );
    assert.deepEqual(JSON.parse(JSON.stringify(list[0])), { tag: 'web', type: 'component', mode: 'respawn', state: 'running', pid: 100, since: NOW - 5000, restarts: 2 });
    assert.deepEqual(JSON.parse(JSON.stringify(list[4])), { tag: 'nap', type: 'component', mode: 'respawn', state: 'sleeping', since: NOW - 100, restarts: 11, wakeAt: NOW + 4500, lastExit: { exitCode: 1, at: NOW - 100 } });
    assert.equal(list[3]!.master, 'tcpmux');
  });

  test('GET leaves out what a list-acl hides', async () => {
    const r = await req(fake(), 'GET', '/programs', { ...READER, canSee: (tag) => tag !== 'web' });
    assert.ok(!(r.body as Body[]).some((p) => p.tag === 'web'));
  });

  test('GET /programs/TAG: one component, percent-decoded; unknown or hidden is 404', async () => {
    const f = fake();
    const r = await req(f, 'GET', '/programs/web');
    assert.equal(bodyOf(r).tag, 'web');
    assert.equal(bodyOf(await req(f, 'GET', '/programs/a%20b')).tag, 'a b');
    assertError(await req(f, 'GET', '/programs/nosuch'), 'ERR_NOT_FOUND', /no component "nosuch"/);
    assertError(await req(f, 'GET', '/programs/web', { ...ADMIN, canSee: () => false }), 'ERR_NOT_FOUND', /no component "web"/);
  });

  test('tags are validated: control characters, encoded slashes, bad encoding, length', async () => {
    const f = fake();
    assertError(await req(f, 'GET', '/programs/we%00b'), 'ERR_BAD_REQUEST', /not a component tag/);
    assertError(await req(f, 'GET', '/programs/a%2Fb'), 'ERR_BAD_REQUEST');
    assertError(await req(f, 'GET', '/programs/%E0%A4%A'), 'ERR_BAD_REQUEST', /percent-encoded/);
    assertError(await req(f, 'GET', `/programs/${'x'.repeat(256)}`), 'ERR_BAD_REQUEST');
    assertError(await req(f, 'PUT', '/programs/%0a'), 'ERR_BAD_REQUEST');
    assert.deepEqual(f.calls, []);
    assert.ok(isValidName('web-1.2_x:y@z'));
    assert.ok(isValidName('ünïcode tag'));
    assert.ok(!isValidName(''));
  });

  const ACTIONS = [
    ['PUT', 'start', 'started'],
    ['DELETE', 'stop', 'stopped'],
    ['POST', 'restart', 'restarted'],
  ] as const;
  for (const [method, action, done] of ACTIONS) {
    test(`${method} /programs/TAG ${action}s it`, async () => {
      const f = fake();
      const r = await req(f, method, '/programs/web');
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { status: 'OK', tag: 'web', action, state: 'running', message: `${done} web (state: running)` });
      assert.deepEqual(f.calls, [`${action} web`]);
    });

    test(`${method} /programs/TAG: unknown 404, subordinate 409, non-admin 403`, async () => {
      const f = fake();
      assertError(await req(f, method, '/programs/nosuch'), 'ERR_NOT_FOUND', /no component "nosuch"/);
      assertError(await req(f, method, '/programs/help-svc'), 'ERR_CONFLICT', new RegExp(`cannot ${action} "help-svc": it is a TCPMUX subordinate of "tcpmux"`));
      assertError(await req(f, method, '/programs/web', READER), 'ERR_FORBIDDEN');
      assertError(await req(f, method, '/programs/web', { ...ADMIN, canAdmin: (tag) => tag !== 'web' }), 'ERR_FORBIDDEN', new RegExp(`may not ${action} "web" \\(its admin-acl\\)`));
      assert.deepEqual(f.calls, [`${action} help-svc`]);
    });
  }

  test('/programs has only GET; the programs of pies selectors are not supported', async () => {
    assertError(await req(fake(), 'DELETE', '/programs'), 'ERR_METHOD', /allowed: GET/);
    assertError(await req(fake(), 'GET', '/programs', ADMIN, 'op=component'), 'ERR_BAD_REQUEST');
  });
});

describe('/alive/TAG (pies semantics)', () => {
  test('200 when running or listening (a TCPMUX subordinate: its master listens)', async () => {
    const f = fake();
    for (const tag of ['web', 'echo', 'help-svc']) {
      const r = await req(f, 'GET', `/alive/${tag}`, READER);
      assert.equal(r.status, 200, tag);
      assert.equal(bodyOf(r).status, 'OK');
    }
  });

  test('503 when not running; Retry-After while it sleeps', async () => {
    const f = fake();
    const nap = await req(f, 'GET', '/alive/nap');
    assertError(nap, 'ERR_NOT_RUNNING', /"nap" is sleeping/);
    assert.deepEqual(nap.headers, { 'Retry-After': '5' });
    assert.equal(bodyOf(nap).state, 'sleeping');
    const off = await req(f, 'GET', '/alive/off');
    assertError(off, 'ERR_NOT_RUNNING', /"off" is disabled/);
    assert.equal(off.headers, undefined);
  });

  test('404 for an unknown component; only GET', async () => {
    assertError(await req(fake(), 'GET', '/alive/nosuch'), 'ERR_NOT_FOUND');
    assertError(await req(fake(), 'GET', '/alive'), 'ERR_NOT_FOUND');
    assertError(await req(fake(), 'POST', '/alive/web'), 'ERR_METHOD');
  });
});

describe('/acl/test', () => {
  test('the decision with every level and its rule, for readers too', async () => {
    const f = fake();
    const r = await req(f, 'GET', '/acl/test', READER, 'address=127.0.0.1&target=web');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      status: 'OK',
      address: '127.0.0.1',
      target: 'web',
      decision: 'allow',
      levels: [
        { acl: 'global', decision: 'no-acl', rule: 'no ACL: allowed' },
        { acl: 'component "web"', decision: 'allow', rule: 'allow by t.conf:2:5' },
      ],
    });
    const deny = await req(f, 'GET', '/acl/test', READER, 'address=10.1.2.3&target=web');
    assert.equal(deny.status, 200, 'a deny is an answer, not an error');
    assert.equal(bodyOf(deny).decision, 'deny');
  });

  test('IPv6 addresses and no target', async () => {
    const f = fake();
    const r = await req(f, 'GET', '/acl/test', ADMIN, 'address=%3A%3A1');
    assert.equal(bodyOf(r).decision, 'allow');
    assert.deepEqual(f.calls, ['aclTest ::1 -']);
  });

  test('validation: missing or bad address, bad or unknown target, extra parameters', async () => {
    const f = fake();
    assertError(await req(f, 'GET', '/acl/test'), 'ERR_BAD_REQUEST', /needs \?address=IP/);
    assertError(await req(f, 'GET', '/acl/test', ADMIN, 'address=example.com'), 'ERR_BAD_REQUEST', /"example.com" is not an IP address/);
    assertError(await req(f, 'GET', '/acl/test', ADMIN, 'address=1.2.3.4/8'), 'ERR_BAD_REQUEST');
    assertError(await req(f, 'GET', '/acl/test', ADMIN, 'address=1.2.3.4&target=%01x'), 'ERR_BAD_REQUEST', /not a component tag or TCPMUX service name/);
    assertError(await req(f, 'GET', '/acl/test', ADMIN, 'address=1.2.3.4&verbose=1'), 'ERR_BAD_REQUEST', /unknown query parameter "verbose"/);
    assert.deepEqual(f.calls, []);
    assertError(await req(f, 'GET', '/acl/test', ADMIN, 'address=1.2.3.4&target=nosuch'), 'ERR_NOT_FOUND', /no component or TCPMUX service named "nosuch"/);
  });

  test('a component or service the client may not see is 404', async () => {
    const f = fake();
    const hidden: ControlPeer = { ...ADMIN, canSee: (tag) => tag !== 'help-svc' };
    assertError(await req(f, 'GET', '/acl/test', hidden, 'address=1.2.3.4&target=help-svc'), 'ERR_NOT_FOUND');
    assertError(await req(f, 'GET', '/acl/test', hidden, 'address=1.2.3.4&target=HELP'), 'ERR_NOT_FOUND');
    assert.deepEqual(f.calls, []);
  });
});

describe('routing, permissions and errors', () => {
  test('unknown paths are 404 JSON; a trailing slash is accepted; methods are case-insensitive', async () => {
    const f = fake();
    assertError(await req(f, 'GET', '/'), 'ERR_NOT_FOUND', /no endpoint \//);
    assertError(await req(f, 'GET', '/nosuch'), 'ERR_NOT_FOUND');
    assertError(await req(f, 'GET', '/programs/web/extra'), 'ERR_NOT_FOUND');
    assertError(await req(f, 'GET', '//programs'), 'ERR_NOT_FOUND');
    assert.equal((await req(f, 'GET', '/programs/')).status, 200);
    assert.equal((await req(f, 'get', '/instance')).status, 200);
    assertError(await req(f, 'HEAD', '/instance'), 'ERR_METHOD');
    assertError(await req(f, 'GET', 'instance'), 'ERR_BAD_REQUEST');
  });

  test('a client without read access gets 403 for every GET', async () => {
    const f = fake();
    const noRead: ControlPeer = { kind: 'inet', admin: false, read: false };
    for (const path of ['/instance', '/programs', '/programs/web', '/alive/web', '/conf/check']) {
      assertError(await req(f, 'GET', path, noRead), 'ERR_FORBIDDEN', /user-acl/);
    }
    assert.deepEqual(f.calls, []);
  });

  test('an exception in the daemon is a 500 ERR_INTERNAL carrying the error for the log', async () => {
    const f = fake();
    f.fail = true;
    const r = await req(f, 'GET', '/instance');
    assertError(r, 'ERR_INTERNAL', /internal error: boom/);
    assert.ok(r.error instanceof Error);
  });

  test('the error table: unique statuses per meaning, documented in docs/control.md', () => {
    const docs = readFileSync(new URL('../../../docs/control.md', import.meta.url), 'utf8');
    for (const [code, { status }] of Object.entries(CONTROL_ERRORS)) {
      assert.match(docs, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `docs/control.md lists ${code} with ${status}`);
    }
  });
});
