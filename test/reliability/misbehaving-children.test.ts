// Children that misbehave (issue 8), under the built daemon: one ignores SIGTERM, one leaves a
// grandchild in its process group, one closes its stdout and stderr at once and lives on, and
// one writes 100 MB to stderr (routed to the log). Stop must still finish within
// shutdown-timeout + 1 s and leave no process behind (by pid and by process group or
// session), the log must stay bounded by the 16 KiB line cap, and the daemon's memory must
// not follow the flood. inetd and xinetd keep no log of a service's stderr at all: it goes
// to the client's socket or nowhere (../shared/reference/peers.md §3, `env` service).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { alive, waitFor } from '../helpers/daemon.js';
import { type LogLine, startDaemonProcess } from './daemon-process.js';
import { record, size } from './lib.js';

const STDERR_BYTES = size(5, 100) * 1024 * 1024;
const SHUTDOWN_TIMEOUT_S = 2;
const LINE_CAP = 16 * 1024;
// A logged line: the text up to the cap, JSON-escaped (a control byte becomes \u00XX, six
// bytes), plus the record's own fields.
const RECORD_OVERHEAD = 512;
const ESCAPED = 6;
const RSS_GROWTH_LIMIT_MB = 64;

// The most log the cap allows for what spew-stderr.js writes (the same arithmetic): lines of
// 1 MiB and 4 KiB text kept up to 16 KiB, control-byte lines escaped, one record each.
function logBound(total: number): { lines: number; cut: number; bytes: number } {
  let lines = 0;
  let cut = 0;
  let bytes = 0;
  let written = 0;
  const phase = (share: number, size: number, escape: number): void => {
    for (let left = share; left >= size; left -= size) {
      lines++;
      if (size - 1 > LINE_CAP) cut++;
      bytes += Math.min(size - 1, LINE_CAP) * escape + RECORD_OVERHEAD;
      written += size;
    }
  };
  phase(total * 0.8, 1024 * 1024, 1);
  phase(total * 0.15, 4096, 1);
  phase(total - written, 4096, ESCAPED);
  if (total > written) {
    lines++;
    bytes += Math.min(total - written, LINE_CAP) + RECORD_OVERHEAD;
  }
  return { lines, cut, bytes };
}

const CONFIG = `
shutdown-timeout ${SHUTDOWN_TIMEOUT_S};
component ignore { command "{{bin}}/ignore-term.js"; }
component forker { command "{{bin}}/fork-grandchild.sh {{dir}}/grandchild.pid"; }
component closer { command "{{bin}}/close-stdout.js --stderr"; }
component noisy {
    command "{{bin}}/spew-stderr.js ${STDERR_BYTES}";
    stderr syslog info;
}
`;

// Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [2] pgrp, [3] session.
function stat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

// Live (non-zombie) processes whose process group or session is one of `leaders`.
function inGroups(leaders: ReadonlySet<number>): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = stat(Number(name));
    if (!f || f[0] === 'Z' || f[0] === 'X') continue;
    if (leaders.has(Number(f[2])) || leaders.has(Number(f[3]))) found.push(Number(name));
  }
  return found;
}

test('misbehaving children: stop within shutdown-timeout + 1 s, nothing left, bounded log and memory', async (t) => {
  // The flood is measured, not kept: only its size and its longest record are noted.
  let floodLines = 0;
  let floodTruncated = 0;
  let longestRecord = 0;
  const keep = (line: LogLine): boolean => {
    if (line['component'] !== 'noisy' || line['stream'] !== 'stderr') return true;
    floodLines++;
    if (line['truncated'] === true) floodTruncated++;
    const bytes = Buffer.byteLength(JSON.stringify(line));
    longestRecord = Math.max(longestRecord, bytes);
    return false;
  };
  const d = await startDaemonProcess(t, { config: CONFIG, keep });
  const rssStart = d.rssMb();
  let rssMax = rssStart;
  const before = d.stderrVolume().bytes;
  const sampling = setInterval(() => {
    try {
      const rss = d.rssMb();
      // An exiting process has no VmRSS line any more.
      if (Number.isFinite(rss)) rssMax = Math.max(rssMax, rss);
    } catch {
      // Exited: the assertions below say why.
    }
  }, 25);
  t.after(() => clearInterval(sampling));

  const floodStart = performance.now();
  await d.waitLog((l) => l['component'] === 'noisy' && String(l.msg).startsWith('spew done'), 120_000);
  const floodSeconds = (performance.now() - floodStart) / 1000;
  const logBytes = d.stderrVolume().bytes - before;
  await d.waitLog((l) => l['component'] === 'ignore' && l.msg === 'ready');
  const grandchildFile = path.join(d.dir, 'grandchild.pid');
  await waitFor(() => existsSync(grandchildFile), 5000, 'the grandchild pid file');
  const grandchild = Number(readFileSync(grandchildFile, 'utf8'));
  assert.ok(alive(grandchild), 'the grandchild runs');

  // The closer lives on without stdout and stderr, and tpies still counts it as running.
  const closer = await d.control('GET', '/programs/closer');
  assert.equal((closer.body as { state: string }).state, 'running', JSON.stringify(closer.body));
  const pids = new Set(d.entries({ msg: 'component started' }).map((l) => Number(l['childPid'])));
  assert.equal(pids.size, 4, `component pids ${[...pids]}`);
  for (const pid of pids) assert.ok(alive(pid), `component ${pid} runs`);
  assert.deepEqual(d.entries({ msg: 'component exited' }), [], 'no component exited on its own');

  const stopStart = performance.now();
  const exit = await d.stop(10_000);
  const stopSeconds = (performance.now() - stopStart) / 1000;
  clearInterval(sampling);
  const killed = d.entries({ msg: 'component killed' }).map((l) => l['component']);

  const leftPids = [...pids, grandchild].filter(alive);
  const leftInGroups = inGroups(new Set([...pids, grandchild]));
  const perMb = logBytes / (STDERR_BYTES / 1024 / 1024);
  const bound = logBound(STDERR_BYTES);
  const pass =
    exit.code === 0 && stopSeconds <= SHUTDOWN_TIMEOUT_S + 1 && leftPids.length === 0 && leftInGroups.length === 0 &&
    floodLines === bound.lines && floodTruncated === bound.cut && logBytes <= bound.bytes && longestRecord <= LINE_CAP * ESCAPED + RECORD_OVERHEAD && rssMax - rssStart <= RSS_GROWTH_LIMIT_MB;
  record(t, {
    scenario: 'misbehaving-children',
    figures: {
      'stderr (MB)': STDERR_BYTES / 1024 / 1024,
      'flood time (s)': Math.round(floodSeconds * 10) / 10,
      'log (KB) per MB of stderr': Math.round(perMb / 1024),
      'cap allows (KB per MB)': Math.round(bound.bytes / (STDERR_BYTES / 1024 / 1024) / 1024),
      'log lines': floodLines,
      'lines cut at 16 KiB': floodTruncated,
      'longest record (KB)': Math.round(longestRecord / 1024),
      'RSS start/max (MB)': `${Math.round(rssStart)}/${Math.round(rssMax)}`,
      'stop (s)': Math.round(stopSeconds * 100) / 100,
      'SIGKILLed': killed.join(' ') || 'none',
      'processes left': leftPids.length + leftInGroups.length,
    },
    condition: `stop ≤ shutdown-timeout (${SHUTDOWN_TIMEOUT_S} s) + 1 s, no process left, log within the 16 KiB line cap, RSS growth ≤ ${RSS_GROWTH_LIMIT_MB} MB`,
    pass,
  });
  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
  assert.ok(stopSeconds <= SHUTDOWN_TIMEOUT_S + 1, `stop took ${stopSeconds.toFixed(2)} s`);
  assert.deepEqual(killed, ['ignore'], 'only the child ignoring SIGTERM needed SIGKILL');
  assert.deepEqual(leftPids, [], 'component and grandchild pids');
  assert.deepEqual(leftInGroups, [], 'processes in the components’ groups or sessions');
  assert.equal(floodLines, bound.lines, 'one record per stderr line');
  assert.equal(floodTruncated, bound.cut, 'every line over 16 KiB cut');
  assert.ok(longestRecord <= LINE_CAP * ESCAPED + RECORD_OVERHEAD, `longest record ${longestRecord} B`);
  assert.ok(logBytes <= bound.bytes, `log ${logBytes} B > bound ${bound.bytes} B`);
  assert.ok(rssMax - rssStart <= RSS_GROWTH_LIMIT_MB, `RSS ${rssStart.toFixed(0)} → ${rssMax.toFixed(0)} MB`);
});
