// Socket activation (sd_listen_fds(3)): which listening sockets systemd handed us, by name.
// Pure apart from reading the environment; a component whose tag equals an fd's name
// (`FileDescriptorName=TAG` in tpies.socket, `--fdname=TAG` for systemd-socket-activate)
// listens on that fd instead of binding its `socket` URL.

/** The first inherited fd; systemd passes LISTEN_FDS of them as 3, 4, 5, … */
export const SD_LISTEN_FDS_START = 3;

/** The sockets systemd passed to this process. */
export interface InheritedSockets {
  /** fds by name (LISTEN_FDNAMES), in order; a name may carry several (e.g. IPv4 and IPv6). */
  readonly fds: ReadonlyMap<string, readonly number[]>;
  /** fds without a usable name: LISTEN_FDNAMES unset, or an empty or "unknown" entry. */
  readonly unnamed: readonly number[];
  /** Why variables that were set were ignored (for a warning in the log); empty normally. */
  readonly warnings: readonly string[];
}

const NONE: InheritedSockets = { fds: new Map(), unnamed: [], warnings: [] };

// The variables through which systemd passes sockets; children must never inherit them.
export const ACTIVATION_ENV = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;

// sd_listen_fds_with_names(): the inherited sockets, or none unless LISTEN_PID is this process
// (the variables may have leaked from a parent that was activated, e.g. under `npx`).
export function inheritedSockets(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): InheritedSockets {
  const { LISTEN_PID: rawPid, LISTEN_FDS: rawCount, LISTEN_FDNAMES: rawNames } = env;
  if (rawPid === undefined && rawCount === undefined) return NONE;
  const listenPid = parseCount(rawPid);
  if (listenPid === undefined || listenPid === 0) return { ...NONE, warnings: [`ignoring socket activation: LISTEN_PID="${rawPid ?? ''}" is not a pid`] };
  if (listenPid !== pid) return { ...NONE, warnings: [`ignoring socket activation: LISTEN_PID=${listenPid} is not this process (${pid})`] };
  const count = parseCount(rawCount);
  if (count === undefined) return { ...NONE, warnings: [`ignoring socket activation: LISTEN_FDS="${rawCount ?? ''}" is not a count`] };
  const warnings: string[] = [];
  const names = rawNames === undefined || rawNames === '' ? [] : rawNames.split(':');
  if (names.length > 0 && names.length !== count) {
    // sd_listen_fds_with_names() refuses this (EINVAL); naming fds by a guess could hand a
    // component the wrong socket, so every fd is treated as unnamed instead.
    warnings.push(`LISTEN_FDNAMES has ${names.length} names for ${count} fds; treating every fd as unnamed`);
    names.length = 0;
  }
  const fds = new Map<string, number[]>();
  const unnamed: number[] = [];
  for (let i = 0; i < count; i++) {
    const fd = SD_LISTEN_FDS_START + i;
    const name = names[i];
    if (name === undefined || name === '' || name === 'unknown') {
      unnamed.push(fd);
      continue;
    }
    const list = fds.get(name);
    if (list) list.push(fd);
    else fds.set(name, [fd]);
  }
  return { fds, unnamed, warnings };
}

// Delete LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES (sd_listen_fds(1)'s unset_environment) so
// that nothing started later mistakes them for its own.
export function clearActivationEnv(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of ACTIVATION_ENV) delete env[name];
}

// A non-negative decimal integer, as systemd writes it; anything else is undefined.
function parseCount(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,9}$/.test(text)) return undefined;
  return Number.parseInt(text, 10);
}
