// The C TCPMUX masters measured in ../shared/reference/peers.md, started and stopped with
// the scripts in ../shared/peers/ (loopback only; they stop by recorded pid, never by name).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runScriptSync, type Cleanup } from './cleanup.js';

export type PeerName = 'xinetd' | 'inetutils-inetd';

export interface PeerProcess {
  readonly name: PeerName;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export function peersDir(root: string): string {
  return path.resolve(root, '../shared/peers');
}

function run(file: string, args: readonly string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, [...args], { timeout: timeoutMs, encoding: 'utf8', env: env ?? process.env }, (error, stdout, stderr) => {
      resolve({ ok: !error, stdout, stderr: stderr || (error ? error.message : '') });
    });
  });
}

/**
 * Make sure xinetd is installed: `apt-get install -y xinetd` when /usr/sbin/xinetd is
 * missing. Returns a reason when it is still unavailable. inetutils-inetd needs nothing
 * here: its script unpacks the Debian package into a temp dir on first use.
 */
export async function ensurePeer(name: PeerName, say: (line: string) => void): Promise<string | undefined> {
  if (name !== 'xinetd' || existsSync('/usr/sbin/xinetd')) return undefined;
  say('xinetd is not installed: running "apt-get install -y xinetd" (needs root and the Debian mirror)…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'xinetd'], 300_000, env);
  if (!r.ok) {
    await run('apt-get', ['update'], 300_000, env);
    r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'xinetd'], 300_000, env);
  }
  if (!r.ok || !existsSync('/usr/sbin/xinetd')) {
    return `could not install xinetd (${r.stderr.trim().split('\n').slice(-1)[0] ?? 'apt-get failed'}); install it by hand: apt-get install -y xinetd`;
  }
  say('xinetd installed. (If the package started a system-wide xinetd, this bench did not start it and leaves it alone.)');
  return undefined;
}

/** Start `name` as a TCPMUX master on 127.0.0.1:port; throws with the script's message. */
export async function startPeer(root: string, name: PeerName, port: number, runDir: string, cleanup: Cleanup): Promise<PeerProcess> {
  const dir = peersDir(root);
  // The peers' run dirs (config, pid file, logs) go under this run's temp dir.
  const env = { ...process.env, TCPMUX_PEER_RUNDIR: runDir };
  const script = path.join(dir, `${name}.sh`);
  const stopScript = path.join(dir, 'stop.sh');
  if (!existsSync(script)) throw new Error(`${script} not found`);
  // Register the stop first: a half-started peer is stopped too (stop.sh is a no-op otherwise).
  const stopSync = (): void => runScriptSync(stopScript, [name, String(port), '127.0.0.1'], env);
  const stopAsync = async (): Promise<void> => {
    await run('bash', [stopScript, name, String(port), '127.0.0.1'], 30_000, env);
  };
  const unregister = cleanup.add(`${name} on 127.0.0.1:${port}`, stopAsync, stopSync);
  const r = await run('bash', [script, String(port), '127.0.0.1'], 300_000, env);
  const pid = Number(r.stdout.trim().split('\n').pop());
  if (!r.ok || !Number.isInteger(pid) || pid <= 0) {
    await stopAsync();
    unregister();
    throw new Error(r.stderr.trim() || `${name}.sh printed no pid`);
  }
  return {
    name,
    port,
    pid,
    stop: async () => {
      await stopAsync();
      unregister();
    },
  };
}
