// Starts the real daemon in-process on a temp config (ports 0, unix sockets in a temp dir)
// and guarantees cleanup: every test that uses it stops the daemon and its children in
// t.after, even on failure.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { type Daemon, type DaemonOptions, startDaemon } from '../../src/daemon.js';
import { type LogEntry, createMemoryLogger } from '../../src/log/logger.js';

export const FIXTURES = path.resolve(import.meta.dirname, '../fixtures');
export const BIN = path.join(FIXTURES, 'bin');

export interface TestDaemon {
  readonly daemon: Daemon;
  readonly dir: string;
  readonly configFile: string;
  readonly logs: LogEntry[];
  /** The TCP port `tag` listens on. */
  port(tag: string): number;
  /** Rewrite the config (for reload tests). */
  writeConfig(text: string): Promise<void>;
}

// `config` may use {{dir}} (the temp dir) and {{bin}} (test/fixtures/bin).
export async function startTestDaemon(t: TestContext, config: string, extra: Partial<Omit<DaemonOptions, 'configFile' | 'log'>> = {}): Promise<TestDaemon> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tpies-test-'));
  const configFile = path.join(dir, 'tpies.conf');
  const expand = (text: string): string => text.replaceAll('{{dir}}', dir).replaceAll('{{bin}}', BIN);
  await writeFile(configFile, expand(config));
  const { log, entries } = createMemoryLogger('debug');
  let daemon: Daemon | undefined;
  t.after(async () => {
    await daemon?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  daemon = await startDaemon({ configFile, log, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, ...extra });
  const started = daemon;
  return {
    daemon: started,
    dir,
    configFile,
    logs: entries,
    port(tag) {
      const a = started.addressOf(tag);
      if (!a || typeof a === 'string') throw new Error(`${tag} is not listening on TCP`);
      return (a as AddressInfo).port;
    },
    writeConfig: (text) => writeFile(configFile, expand(text)),
  };
}

// Poll `predicate` every 10 ms until it holds; fail after `timeoutMs`. No fixed sleeps.
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// True while a process with `pid` exists and is not a zombie: orphaned grandchildren may
// stay zombies here (init need not reap them), and a zombie no longer runs.
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
