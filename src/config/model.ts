// The validated, read-only configuration model that the supervisor, listeners and ACLs run
// from. config/build.ts makes it from the AST; nothing mutates a Config afterwards.
import type { Location } from './ast.js';

/** pies modes (manual §"Component Statement"); `exec` and `nostartaccept` are aliases. */
export type Mode = 'respawn' | 'inetd' | 'accept' | 'startup' | 'shutdown';

/** Flags tpies implements (`flags` statement). */
export type Flag =
  | 'disable'
  | 'precious'
  | 'nullinput'
  | 'wait'
  | 'tcpmux'
  | 'tcpmuxplus'
  | 'internal'
  | 'sockenv'
  | 'resolve'
  | 'shell'
  | 'expandenv'
  | 'siggroup';

/** Built-in inetd services (`flags internal; service NAME;`). */
export type InternalService = 'echo' | 'discard' | 'daytime' | 'time' | 'chargen' | 'qotd' | 'tcpmux';

/** A parsed `socket` URL. */
export type SocketAddress =
  | {
      readonly kind: 'inet';
      readonly family: 4 | 6;
      /** Host name or numeric address as written; `0.0.0.0` / `::` when omitted. */
      readonly host: string;
      /** 0 asks the kernel for an ephemeral port (handy in tests). */
      readonly port: number;
      /** The service name the port was given as, if any (`inet://0.0.0.0:echo`). */
      readonly portName?: string;
      readonly url: string;
    }
  | {
      readonly kind: 'unix';
      readonly path: string;
      readonly user?: string;
      readonly group?: string;
      readonly mode?: number;
      readonly umask?: number;
      readonly url: string;
    };

/** One `from` item of an ACL entry. */
export type AclAddress =
  | { readonly kind: 'any' }
  | { readonly kind: 'cidr'; readonly family: 4 | 6; readonly address: string; readonly prefix: number; readonly text: string }
  | { readonly kind: 'unix'; readonly path: string };

/** `allow|deny [acl NAME] [from ADDR-LIST];` — every present part must match. */
export interface AclEntry {
  readonly action: 'allow' | 'deny';
  /** Named sub-ACL that must match (`acl NAME`). */
  readonly acl?: string;
  /** Absent means any source; present means one of these. */
  readonly from?: readonly AclAddress[];
  readonly location: Location;
}

/** An ACL: an ordered list where the first matching entry decides. */
export interface Acl {
  /** Set for `defacl NAME`, absent for inline blocks. */
  readonly name?: string;
  readonly entries: readonly AclEntry[];
  readonly location: Location;
}

/** `acl NAME;` or `acl { … }` where an ACL is expected. */
export type AclRef = { readonly kind: 'named'; readonly name: string; readonly location: Location } | { readonly kind: 'inline'; readonly acl: Acl };

/** Resource limits (`limits` statement, pies manual "Resources"). Sizes in KiB as written. */
export interface Limits {
  readonly as?: number; // A: address space, KiB
  readonly core?: number; // C: core size, KiB
  readonly data?: number; // D: data size, KiB
  readonly fsize?: number; // F: file size, KiB
  readonly memlock?: number; // M: locked memory, KiB
  readonly nofile?: number; // N: open files
  readonly rss?: number; // R: resident set, KiB
  readonly stack?: number; // S: stack, KiB
  readonly cpu?: number; // T: CPU time, minutes
  readonly nproc?: number; // U: processes
  readonly nice?: number; // P: priority -20..20
}

/** One `env` operation, applied in order (clear/keep first, as pies does). */
export type EnvOp =
  | { readonly op: 'clear' }
  | { readonly op: 'keep'; readonly pattern: string; readonly value?: string }
  | { readonly op: 'set'; readonly name: string; readonly value: string }
  | { readonly op: 'unset'; readonly pattern: string; readonly value?: string }
  | { readonly op: 'eval'; readonly expression: string }
  | { readonly op: 'append'; readonly name: string; readonly value: string }
  | { readonly op: 'prepend'; readonly name: string; readonly value: string };

/** `stdout|stderr file PATH` or `stdout|stderr syslog [FACILITY.]PRIORITY`. */
export type Redirect =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'syslog'; readonly facility?: string; readonly priority: SyslogPriority };

export type SyslogPriority = 'emerg' | 'alert' | 'crit' | 'err' | 'warning' | 'notice' | 'info' | 'debug';

/** What an exit status is matched against: an exit code or a signal number. */
export type ExitMatch = { readonly kind: 'code'; readonly code: number } | { readonly kind: 'signal'; readonly signal: number };

/** `return-code CODES { action …; exec …; notify …; message …; }`. */
export interface ReturnCode {
  readonly match: readonly ExitMatch[];
  readonly action?: 'disable' | 'restart';
  readonly exec?: string;
  readonly notify?: readonly string[];
  readonly message?: string;
  readonly location: Location;
}

/**
 * Respawn policy, tpies' explicit form of pies' throttle: restarts back off from
 * `initialDelayMs` by `factor` up to `maxDelayMs` (± `jitter`, a fraction); more than
 * `limit` starts within `windowMs` puts the component to sleep for `sleepMs`.
 */
export interface RespawnPolicy {
  readonly initialDelayMs: number;
  readonly factor: number;
  readonly maxDelayMs: number;
  readonly jitter: number;
  readonly windowMs: number;
  readonly limit: number;
  readonly sleepMs: number;
}

/** TCPMUX master settings: service-line length cap and read timeout; for masters with
 * `match` subordinates, how many bytes and how long sniffing waits (docs/sniffing.md). */
export interface TcpmuxSettings {
  readonly maxLineBytes: number;
  readonly timeoutMs: number;
  readonly sniffLimit: number;
  readonly sniffTimeoutMs: number;
}

/** One `match` statement of a TCPMUX subordinate: what the client's first bytes must be. */
export type MatchRule =
  | { readonly kind: 'prefix'; readonly text: string }
  | { readonly kind: 'regex'; readonly source: string }
  | { readonly kind: 'tls'; readonly sni?: readonly string[]; readonly alpn?: readonly string[] }
  | { readonly kind: 'http'; readonly host?: readonly string[] }
  | { readonly kind: 'ssh' }
  | { readonly kind: 'socks5' }
  | { readonly kind: 'default' }
  | { readonly kind: 'timeout' };

/** Settings a component runs its processes with; global ones are defaults. */
export interface ProcessSettings {
  readonly user?: string;
  readonly group?: readonly string[];
  readonly allgroups?: boolean;
  readonly umask?: number;
  readonly limits?: Limits;
  readonly env?: readonly EnvOp[];
  readonly chdir?: string;
}

/** A `component TAG { … }` block. */
export interface Component extends ProcessSettings {
  readonly tag: string;
  readonly location: Location;
  readonly mode: Mode;
  readonly flags: ReadonlySet<Flag>;
  /** The raw `command` line; `argv` is its shell-style split. */
  readonly command?: string;
  readonly argv?: readonly string[];
  readonly program?: string;
  /** Tags that must be running first; `all` is resolved to the components defined before. */
  readonly prerequisites: readonly string[];
  readonly dependents: readonly string[];
  readonly socket?: SocketAddress;
  readonly socketType: 'stream';
  readonly service?: string;
  readonly internal?: InternalService;
  readonly tcpmuxMaster?: string;
  readonly tcpmux?: TcpmuxSettings;
  /** Sniffing rules (any of them matches), for a subordinate of a TCPMUX master. */
  readonly match?: readonly MatchRule[];
  /** A master's reply when no rule and no service matches (else it just closes). */
  readonly noMatchMessage?: string;
  /** Proxy connections here instead of running a program. */
  readonly forward?: SocketAddress;
  readonly proxyProtocol?: 1 | 2;
  readonly connectTimeoutMs?: number;
  readonly maxInstances?: number;
  readonly maxInstancesMessage?: string;
  readonly maxRate?: number;
  readonly maxIpConnections?: number;
  readonly maxIpConnectionsMessage?: string;
  readonly accessDeniedMessage?: string;
  readonly acl?: AclRef;
  readonly listAcl?: AclRef;
  readonly adminAcl?: AclRef;
  readonly removeFile?: string;
  readonly returnCodes: readonly ReturnCode[];
  readonly stdout?: Redirect;
  readonly stderr?: Redirect;
  readonly respawn: RespawnPolicy;
  readonly shutdownTimeoutMs: number;
  /** Statement locations by keyword, so later checks can point at the right line. */
  readonly statementLocations: ReadonlyMap<string, Location>;
}

/** `control { socket …; acl …; }`. */
export interface ControlSettings {
  readonly socket?: SocketAddress;
  /** Where `socket` was given, for diagnostics about it. */
  readonly socketLocation?: Location;
  readonly acl?: AclRef;
  readonly adminAcl?: AclRef;
  readonly userAcl?: AclRef;
  readonly location: Location;
}

/** `syslog { facility …; tag …; dev …; }`. */
export interface SyslogSettings {
  readonly facility?: string;
  readonly tag?: string;
  readonly dev?: string;
}

/** The whole validated configuration. */
export interface Config {
  /** Every file read (main first), for reload watching. */
  readonly files: readonly string[];
  readonly components: readonly Component[];
  readonly defacls: ReadonlyMap<string, Acl>;
  readonly acl?: AclRef;
  readonly pidfile?: string;
  readonly stateDirectory?: string;
  readonly qotdFile?: string;
  readonly shutdownTimeoutMs: number;
  readonly process: ProcessSettings;
  readonly returnCodes: readonly ReturnCode[];
  readonly respawn: RespawnPolicy;
  readonly tcpmux: TcpmuxSettings;
  readonly control?: ControlSettings;
  readonly syslog?: SyslogSettings;
  readonly debug?: number;
}

// pies: "more than 10 spawns within 2 minutes ⇒ sleep 5 minutes" (pies.md §6.3). pies
// restarts at once before that; tpies waits 100 ms, doubling, so a crash loop costs little.
export const DEFAULT_RESPAWN_POLICY: RespawnPolicy = {
  initialDelayMs: 100,
  factor: 2,
  maxDelayMs: 30_000,
  jitter: 0,
  windowMs: 120_000,
  limit: 10,
  sleepMs: 300_000,
};

// inetd reads at most ~256 bytes of service name; 512 leaves room while refusing floods.
// Sniffing: 16 KiB holds any ClientHello seen in practice (post-quantum key shares make them
// ~2 KiB); 2 s is sslh's default timeout before its on-timeout protocol.
export const DEFAULT_TCPMUX_SETTINGS: TcpmuxSettings = { maxLineBytes: 512, timeoutMs: 30_000, sniffLimit: 16_384, sniffTimeoutMs: 2_000 };

/** How long `forward` waits for the backend to accept. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

// pies manual, Global Configuration: shutdown-timeout defaults to 5 seconds.
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000;
