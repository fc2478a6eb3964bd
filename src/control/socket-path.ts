// Where the control socket lives when neither `control { socket …; }` nor --control-socket
// says: shared by the daemon (control/server.ts) and tpiesctl so that both always agree.
import { statSync } from 'node:fs';
import path from 'node:path';
import { type ParsedSocketAddress, parseSocketAddress } from '../inetd/socket-address.js';

/** What decides the default path; injected so tests need not be root. */
export interface SocketPathContext {
  readonly uid: number;
  readonly env: NodeJS.ProcessEnv;
  /** Whether `dir` exists and is a directory. */
  readonly isDirectory: (dir: string) => boolean;
}

/** The default socket path and how its directory must be prepared before binding. */
export interface DefaultSocketPath {
  readonly path: string;
  readonly dir: string;
  /**
   * `system`: /run/tpies (root; created 0755). `runtime`: $XDG_RUNTIME_DIR, private already
   * and used as is. `private`: /tmp/tpies-UID, created 0700 and verified to be ours, since
   * anybody may create names in /tmp first.
   */
  readonly kind: 'system' | 'runtime' | 'private';
}

// root with a /run: /run/tpies/tpies.ctl (FHS runtime data, like sshd and pies-as-init).
// Anyone else: $XDG_RUNTIME_DIR/tpies.ctl, the per-user 0700 directory systemd-logind makes;
// without one, /tmp/tpies-UID/tpies.ctl in a 0700 directory of our own. Never a bare
// /tmp/NAME.ctl as pies uses: another user could create that name first.
export function defaultControlSocket(context: SocketPathContext = processContext()): DefaultSocketPath {
  const { uid, env, isDirectory } = context;
  if (uid === 0 && isDirectory('/run')) return { path: '/run/tpies/tpies.ctl', dir: '/run/tpies', kind: 'system' };
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && path.isAbsolute(runtime) && isDirectory(runtime)) {
    return { path: path.join(runtime, 'tpies.ctl'), dir: runtime, kind: 'runtime' };
  }
  // Not $TMPDIR: sudo and service managers change it, and both sides must agree.
  const dir = `/tmp/tpies-${uid}`;
  return { path: path.join(dir, 'tpies.ctl'), dir, kind: 'private' };
}

// The default path alone (what `tpiesctl --help` shows and tpiesctl connects to).
export function defaultControlSocketPath(context?: SocketPathContext): string {
  return defaultControlSocket(context).path;
}

function processContext(): SocketPathContext {
  return {
    uid: process.getuid?.() ?? 0,
    env: process.env,
    isDirectory: (dir) => {
      try {
        return statSync(dir).isDirectory();
      } catch {
        return false;
      }
    },
  };
}

// `tpies --control-socket X` / `tpiesctl --socket X`: a URL (unix://…, inet://…) or a plain
// path of a unix socket.
export function parseControlSocket(text: string): ParsedSocketAddress {
  if (text.includes('://')) return parseSocketAddress(text);
  if (text === '') return { error: 'the control socket path is empty' };
  return { address: { kind: 'unix', path: text, url: `unix://${text}` } };
}
