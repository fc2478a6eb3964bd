// The listening side of tpies: one Listener per inetd component, the compiled ACLs, the
// connection limits and the live per-connection children. A reload keeps every listener
// whose address did not change (no connection is refused meanwhile) and swaps its handler.
import type { Socket } from 'node:net';
import type { AclRef, Component, Config } from '../config/model.js';
import { type CompiledAcl, compileAcl } from '../acl/acl.js';
import type { Logger } from '../log/logger.js';
import { detach } from '../log/detach.js';
import type { Launcher } from '../supervisor/launch.js';
import type { Child } from '../supervisor/spawn.js';
import { serveTcpmux, subordinateTable, type SubordinateTable } from '../tcpmux/master.js';
import { type Connection, type ConnectionEnv, acceptConnection } from './accept.js';
import { ConnectionLimits } from './limits.js';
import { Listener } from './listener.js';
import { WaitListener } from './wait.js';
import { formatSocketAddress } from './socket-address.js';

export interface NetworkOptions {
  readonly log: Logger;
  readonly retryMs?: number;
}

/** One listening component as status reports show it. */
export interface InetdStatus {
  readonly tag: string;
  readonly state: 'listening' | 'bind-failed' | 'stopped' | 'disabled';
  readonly since: number;
  readonly instances: number;
  /** The bound address, or the configured URL when not bound. */
  readonly socket: string;
}

/** A listener that could not be bound (it is retried in the background). */
export interface BindFailure {
  readonly tag: string;
  readonly socket: string;
}

export class Network {
  readonly #log: Logger;
  readonly #retryMs: number | undefined;
  readonly #listeners = new Map<string, Listener | WaitListener>();
  readonly #limits = new Map<string, ConnectionLimits>();
  readonly #instances = new Map<string, Set<Child>>();
  /** inetd components an administrator stopped: not listening until started again. */
  readonly #adminStopped = new Set<string>();
  readonly #since = new Map<string, number>();
  #acls = new Map<string, CompiledAcl | undefined>();
  #globalAcl: CompiledAcl | undefined;
  #table: SubordinateTable = new Map();
  #env: ConnectionEnv | undefined;
  #config: Config | undefined;
  #launcher: Launcher | undefined;
  /** Inherited fds not yet closed: once closed, an fd number means nothing any more. */
  #inherited = new Map<string, number>();
  readonly #parked = new Map<string, Listener>();

  constructor(options: NetworkOptions) {
    this.#log = options.log;
    this.#retryMs = options.retryMs;
  }

  /**
   * Bind, keep or close listeners so they match `config`; resolves once binds were tried.
   * `inherited` maps component tags to listening fds passed by systemd (socket activation).
   */
  async apply(config: Config, launcher: Launcher, inherited: ReadonlyMap<string, number> = this.#inherited): Promise<BindFailure[]> {
    this.#inherited = new Map(inherited);
    this.#globalAcl = config.acl ? compileRef(config.acl, config) : undefined;
    this.#acls = new Map(config.components.map((c) => [c.tag, c.acl ? compileRef(c.acl, config) : undefined]));
    this.#table = subordinateTable(config.components);
    for (const c of config.components) {
      const settings = { ...(c.maxInstances !== undefined ? { maxInstances: c.maxInstances } : {}), ...(c.maxRate !== undefined ? { maxRate: c.maxRate } : {}), ...(c.maxIpConnections !== undefined ? { maxIpConnections: c.maxIpConnections } : {}) };
      const limits = this.#limits.get(c.tag);
      if (limits) limits.update(settings);
      else this.#limits.set(c.tag, new ConnectionLimits(settings));
    }
    this.#env = this.#connectionEnv(config, launcher);

    const wanted = new Map(config.components.filter((c) => c.mode === 'inetd' && c.socket && !this.#adminStopped.has(c.tag) && !c.flags.has('disable')).map((c) => [c.tag, c]));
    for (const tag of this.#adminStopped) if (!config.components.some((c) => c.tag === tag)) this.#adminStopped.delete(tag);
    this.#config = config;
    this.#launcher = launcher;
    for (const [tag, listener] of this.#listeners) {
      const c = wanted.get(tag);
      const kindChanged = (listener instanceof WaitListener) !== (c?.flags.has('wait') ?? false);
      if (!c?.socket || kindChanged || formatSocketAddress(c.socket) !== formatSocketAddress(listener.address)) {
        this.#listeners.delete(tag);
        await this.#retire(tag, listener);
        this.#log.info({ component: tag, socket: listener.address.url }, 'listener closed');
      }
    }
    const failures: BindFailure[] = [];
    for (const [tag, c] of wanted) {
      const existing = this.#listeners.get(tag);
      if (existing) {
        if (existing instanceof WaitListener) existing.setServe(this.#serveWaiting(c));
        else existing.setHandler(this.#handlerFor(c));
        continue;
      }
      const listener = this.#newListener(c);
      this.#listeners.set(tag, listener);
      this.#since.set(tag, Date.now());
      if (!(await listener.start())) failures.push({ tag, socket: c.socket!.url });
    }
    return failures;
  }

  /** Administrative stop of an inetd component: stop listening (live connections go on). */
  async stopListener(tag: string): Promise<boolean> {
    const listener = this.#listeners.get(tag);
    if (!this.#config?.components.some((c) => c.tag === tag && c.mode === 'inetd' && c.socket)) return false;
    this.#adminStopped.add(tag);
    this.#since.set(tag, Date.now());
    if (listener) {
      this.#listeners.delete(tag);
      await this.#retire(tag, listener);
      this.#log.info({ component: tag }, 'listener closed');
    }
    return true;
  }

  /** Administrative start: listen again (also enables a `flags disable` component). */
  async startListener(tag: string): Promise<boolean> {
    const c = this.#config?.components.find((x) => x.tag === tag && x.mode === 'inetd' && x.socket);
    if (!c || !this.#config || !this.#launcher) return false;
    this.#adminStopped.delete(tag);
    if (this.#listeners.has(tag)) return true;
    const listener = this.#newListener(c);
    this.#listeners.set(tag, listener);
    this.#since.set(tag, Date.now());
    await listener.start();
    return true;
  }

  /** Status of the listening components: listening, stopped, or waiting to bind. */
  status(): InetdStatus[] {
    return (this.#config?.components ?? [])
      .filter((c) => c.mode === 'inetd' && c.socket)
      .map((c) => {
        const listener = this.#listeners.get(c.tag);
        const state = listener ? (listener.bound() !== undefined ? 'listening' : 'bind-failed') : c.flags.has('disable') && !this.#adminStopped.has(c.tag) ? 'disabled' : 'stopped';
        return { tag: c.tag, state, since: this.#since.get(c.tag) ?? 0, instances: this.instances(c.tag), socket: listener?.describe() ?? c.socket!.url };
      });
  }

  /** The bound address of `tag`'s listener (the real port when configured as 0). */
  addressOf(tag: string): ReturnType<Listener['bound']> {
    return this.#listeners.get(tag)?.bound();
  }

  /** True when `tag` has a bound listener: inetd components count as running then. */
  listening(tag: string): boolean {
    return this.#listeners.get(tag)?.bound() !== undefined;
  }

  /** Live per-connection children of `tag`. */
  instances(tag: string): number {
    // Admitted connections count from admission, so a program still being started (or a
    // forwarded connection, which has none) is counted as max-instances counts it.
    return Math.max(this.#instances.get(tag)?.size ?? 0, this.#limits.get(tag)?.live ?? 0);
  }

  /** Stop listening, then TERM the live connection children (KILL after `timeoutMs`). */
  async close(timeoutMs: number): Promise<void> {
    // Children and listeners together (a wait-mode listener only closes once its program has
    // exited); then once more for a child a hand-off still in flight started meanwhile.
    const listeners = [...this.#listeners.values(), ...this.#parked.values()].map((l) => l.close());
    await Promise.all([this.#stopInstances(timeoutMs), ...listeners]);
    this.#listeners.clear();
    this.#parked.clear();
    await this.#stopInstances(timeoutMs);
  }

  // SIGTERM every live connection child (its process group), SIGKILL after `timeoutMs`.
  async #stopInstances(timeoutMs: number): Promise<void> {
    const children = [...this.#instances.values()].flatMap((set) => [...set]);
    if (children.length === 0) return;
    for (const child of children) child.kill('SIGTERM', true);
    const timer = setTimeout(() => children.forEach((c) => c.kill('SIGKILL', true)), timeoutMs);
    await Promise.all(children.map((c) => c.exited));
    clearTimeout(timer);
  }

  // A socket systemd passed us cannot be bound again once closed (systemd holds its own
  // copy): keep it open and refuse its connections until the component listens again.
  async #retire(tag: string, listener: Listener | WaitListener): Promise<void> {
    if (listener instanceof Listener && listener.inherited) {
      listener.setHandler((socket) => socket.destroy());
      this.#parked.set(tag, listener);
      this.#log.warn({ component: tag }, 'inherited socket kept open, refusing connections');
      return;
    }
    await listener.close();
  }

  #newListener(c: Component): Listener | WaitListener {
    if (c.flags.has('wait')) return new WaitListener({ address: c.socket!, log: this.#log.child({ component: c.tag }), serve: this.#serveWaiting(c) });
    const handler = this.#handlerFor(c);
    const parked = this.#parked.get(c.tag);
    if (parked && formatSocketAddress(parked.address) === formatSocketAddress(c.socket!)) {
      this.#parked.delete(c.tag);
      parked.setHandler(handler);
      return parked;
    }
    const fd = this.#inherited.get(c.tag);
    return new Listener({
      address: c.socket!,
      log: this.#log.child({ component: c.tag }),
      onConnection: handler,
      ...(this.#retryMs !== undefined ? { retryMs: this.#retryMs } : {}),
      ...(fd !== undefined ? { fd } : {}),
    });
  }

  // flags wait: the program gets the listening socket and accepts by itself; tpies waits for
  // it to exit before watching the socket again (ACLs and limits cannot apply: tpies never
  // sees the connections).
  #serveWaiting(component: Component): (fd: number) => Promise<void> {
    return async (fd) => {
      const launcher = this.#launcher;
      if (!launcher) return;
      let child: Child;
      try {
        child = launcher.launch(component, { stdin: fd, stdout: fd });
      } catch (error) {
        this.#log.error({ component: component.tag, reason: (error as Error).message }, 'component failed to start');
        await new Promise((resolve) => setTimeout(resolve, 1000));
        return;
      }
      const set = this.#instances.get(component.tag) ?? new Set<Child>();
      this.#instances.set(component.tag, set);
      set.add(child);
      const exit = await child.exited;
      set.delete(child);
      this.#log.info({ component: component.tag, ...(child.pid !== undefined ? { childPid: child.pid } : {}), ...exit }, 'component exited');
      // A program that cannot start, or exits without accepting, must not spin the loop.
      if (exit.spawnError !== undefined) await new Promise((resolve) => setTimeout(resolve, 1000));
    };
  }

  #handlerFor(component: Component): (socket: Socket) => void {
    const unixPath = component.socket?.kind === 'unix' ? component.socket.path : undefined;
    return (socket) => {
      if (!this.#env) return socket.destroy();
      acceptConnection(socket, component, this.#env, unixPath);
    };
  }

  #connectionEnv(config: Config, launcher: Launcher): ConnectionEnv {
    const table = this.#table;
    const env: ConnectionEnv = {
      config,
      log: this.#log,
      launcher,
      acl: (component) => (component ? this.#acls.get(component.tag) : this.#globalAcl),
      limits: (component) => {
        let limits = this.#limits.get(component.tag);
        if (!limits) this.#limits.set(component.tag, (limits = new ConnectionLimits({})));
        return limits;
      },
      track: (tag, child) => {
        const set = this.#instances.get(tag) ?? new Set<Child>();
        this.#instances.set(tag, set);
        set.add(child);
        detach(child.exited.then(() => set.delete(child)), this.#log, 'instance');
      },
      serveTcpmux: (socket: Socket, master: Component, connection: Connection) => serveTcpmux(socket, master, env, table, connection),
    };
    return env;
  }
}

function compileRef(ref: AclRef, config: Config): CompiledAcl | undefined {
  if (ref.kind === 'inline') return compileAcl(ref.acl, config.defacls);
  const named = config.defacls.get(ref.name);
  // Config checks reject undefined names; should one slip through, nobody gets in.
  return compileAcl(named ?? { entries: [{ action: 'deny', location: ref.location }], location: ref.location }, config.defacls);
}
