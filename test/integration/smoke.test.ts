// End to end through the in-process daemon: a TCPMUX master with a tcpmuxplus echo service,
// a respawn component, and a pipelined client whose early bytes must reach the child.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exchange } from '../helpers/tcp-client.js';
import { startTestDaemon, waitFor } from '../helpers/daemon.js';

const CONFIG = `
component tcpmux { socket inet://127.0.0.1:0; service tcpmux; flags internal; }
component echo { tcpmux-master tcpmux; service echo; flags tcpmuxplus; command /bin/cat; }
component forever { command "/bin/sleep 60"; }
`;

test('tcpmux echo receives bytes pipelined with the service line', async (t) => {
  const { daemon, port } = await startTestDaemon(t, CONFIG);
  const r = await exchange({ port: port('tcpmux'), send: ['echo\r\npayload-1'], halfClose: true });
  assert.equal(r.data.toString('latin1'), '+\r\npayload-1');
  assert.equal(r.closed, 'end');
  await waitFor(() => daemon.status().some((s) => s.tag === 'forever' && s.state === 'running'), 5000, 'forever running');
});
