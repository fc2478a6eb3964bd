// Owns one runner per supervised component (modes respawn, accept, startup, shutdown):
// startup components first, the rest in prerequisite order once their prerequisites run,
// stop in reverse order, shutdown components last (pies manual §6.1, §6.5).
import type { Component, Config } from '../config/model.js';
import type { Logger } from '../log/logger.js';
import { detach } from '../log/detach.js';
import { ComponentRunner, type Launch, type RunExitAction } from './component.js';
import { type DependencyGraph, buildDependencyGraph, dependentsOf, startOrder } from './deps.js';
import { type ComponentState, policyOf } from './states.js';

export interface SupervisorDeps {
  readonly log: Logger;
  /** How to start one component's process (env, stdio, exec chain). */
  readonly launcher: (component: Component) => Launch;
  readonly runExitAction: RunExitAction;
  /** True when a component not supervised here (an inetd listener) is up. */
  readonly externalReady?: (tag: string) => boolean;
  readonly now?: () => number;
  readonly random?: () => number;
}

/** One component as status reports show it. */
export interface ComponentStatus {
  readonly tag: string;
  readonly mode: Component['mode'];
  readonly state: ComponentState['name'] | 'waiting-prerequisites';
  readonly pid?: number;
  readonly since: number;
  readonly restarts: number;
  readonly wakeAt?: number;
  readonly lastExit?: ComponentState['lastExit'];
}

export class Supervisor {
  readonly #deps: SupervisorDeps;
  readonly #runners = new Map<string, ComponentRunner>();
  readonly #components = new Map<string, Component>();
  /** Supervised components told to start whose prerequisites are not all up yet. */
  readonly #pending = new Set<string>();
  #graph: DependencyGraph = buildDependencyGraph([]);
  #order: readonly string[] = [];
  #stopping = false;

  constructor(deps: SupervisorDeps) {
    this.#deps = deps;
  }

  /** Take `config`'s supervised components (first start: nothing runs yet). */
  load(config: Config): void {
    this.#graph = buildDependencyGraph(config.components);
    const order = startOrder(this.#graph);
    this.#order = order.ok ? order.order : config.components.map((c) => c.tag);
    for (const c of config.components) this.#components.set(c.tag, c);
    for (const c of config.components) {
      const policy = policyOf(c, config.returnCodes);
      if (!policy || this.#runners.has(c.tag)) continue;
      this.#runners.set(
        c.tag,
        new ComponentRunner({
          policy,
          launch: this.#deps.launcher(c),
          runExitAction: this.#deps.runExitAction,
          log: this.#deps.log,
          disabled: c.flags.has('disable'),
          onChange: () => this.#startReady(),
          ...(this.#deps.now ? { now: this.#deps.now } : {}),
          ...(this.#deps.random ? { random: this.#deps.random } : {}),
        }),
      );
    }
  }

  /** Run startup components to completion, then start the rest in prerequisite order. */
  async start(): Promise<void> {
    const startup = this.#byMode('startup');
    for (const r of startup) r.dispatch({ type: 'start', origin: 'startup' });
    await Promise.all(startup.map((r) => r.whenIdle()));
    if (this.#stopping) return;
    for (const tag of this.#order) {
      const c = this.#components.get(tag);
      if (c && (c.mode === 'respawn' || c.mode === 'accept')) this.#pending.add(tag);
    }
    this.#startReady();
  }

  /** Start components whose prerequisites are up; called after every state change. */
  #startReady(): void {
    if (this.#stopping) return;
    for (const tag of this.#order) {
      if (!this.#pending.has(tag) || !this.#prerequisitesUp(tag)) continue;
      this.#pending.delete(tag);
      this.#runners.get(tag)?.dispatch({ type: 'start', origin: 'startup' });
    }
  }

  #prerequisitesUp(tag: string): boolean {
    return (this.#graph.prerequisites.get(tag) ?? []).every((p) => {
      const runner = this.#runners.get(p);
      if (!runner) return this.#deps.externalReady?.(p) ?? true;
      return runner.state.name === 'running' || runner.state.name === 'finished';
    });
  }

  /** Stop everything, dependents before their prerequisites, then run shutdown components. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#pending.clear();
    const regular = [...this.#runners.values()].filter((r) => r.policy.mode !== 'shutdown');
    await this.#stopInOrder(regular.map((r) => r.tag), 'shutdown');
    const shutdown = this.#byMode('shutdown');
    for (const r of shutdown) r.dispatch({ type: 'start', origin: 'admin' });
    await Promise.all(shutdown.map((r) => this.#bounded(r)));
    for (const r of this.#runners.values()) r.dispose();
  }

  // Stop `tags`, each only once its dependents among them are idle (dependents first).
  async #stopInOrder(tags: readonly string[], origin: 'admin' | 'shutdown'): Promise<void> {
    const wanted = new Set(tags);
    const done = new Map<string, Promise<void>>();
    const stopOne = (tag: string): Promise<void> => {
      let p = done.get(tag);
      if (!p) {
        const dependents = (this.#graph.dependents.get(tag) ?? []).filter((d) => wanted.has(d));
        p = Promise.all(dependents.map(stopOne)).then(() => this.#runners.get(tag)?.stop(origin));
        done.set(tag, p);
      }
      return p;
    };
    await Promise.all(tags.map(stopOne));
  }

  // A shutdown component gets the shutdown timeout, then the usual TERM/KILL.
  async #bounded(r: ComponentRunner): Promise<void> {
    const timer = setTimeout(() => detach(r.stop('shutdown'), this.#deps.log, 'shutdown component'), r.policy.shutdownTimeoutMs);
    await r.whenIdle();
    clearTimeout(timer);
  }

  /** Admin start of one component (re-enables a disabled one). */
  startComponent(tag: string): boolean {
    const r = this.#runners.get(tag);
    if (!r) return false;
    r.dispatch({ type: 'start', origin: 'admin' });
    return true;
  }

  /** Admin stop of one component; resolves when its process is gone. */
  async stopComponent(tag: string): Promise<boolean> {
    const r = this.#runners.get(tag);
    if (!r) return false;
    this.#pending.delete(tag);
    await r.stop('admin');
    return true;
  }

  /** Restart `tag`: its dependents stop first and start again after it (pies §6.2). */
  async restartComponent(tag: string): Promise<boolean> {
    const r = this.#runners.get(tag);
    if (!r) return false;
    const dependents = dependentsOf(this.#graph, tag).filter((t) => this.#runners.get(t)?.busy);
    for (const d of [...dependents].reverse()) await this.#runners.get(d)?.stop('admin');
    await r.stop('admin');
    r.dispatch({ type: 'start', origin: 'admin' });
    for (const d of dependents) this.#pending.add(d);
    this.#startReady();
    return true;
  }

  /**
   * Apply a reload: components to stop or restart go first (their processes end), then the
   * new config's runners are made and the started and restarted ones start when ready.
   */
  async reconfigure(config: Config, stop: readonly string[], start: readonly string[]): Promise<void> {
    // A restarted prerequisite takes its running dependents down and up with it (pies §6.2).
    const kept = new Set(config.components.map((c) => c.tag));
    const bounced = stop
      .filter((t) => kept.has(t))
      .flatMap((t) => dependentsOf(this.#graph, t))
      .filter((d) => kept.has(d) && this.#runners.get(d)?.busy && !stop.includes(d));
    await this.#stopInOrder([...stop, ...bounced], 'admin');
    await this.remove(stop);
    this.load(config);
    for (const tag of [...start, ...bounced]) if (this.#runners.has(tag) && this.#components.get(tag)?.mode !== 'shutdown') this.#pending.add(tag);
    this.#startReady();
  }

  /** Stop and forget components no longer configured (reload). */
  async remove(tags: readonly string[]): Promise<void> {
    await Promise.all(
      tags.map(async (tag) => {
        const r = this.#runners.get(tag);
        this.#pending.delete(tag);
        if (r) {
          await r.stop('admin');
          r.dispose();
        }
        this.#runners.delete(tag);
        this.#components.delete(tag);
      }),
    );
  }

  has(tag: string): boolean {
    return this.#runners.has(tag);
  }

  status(): ComponentStatus[] {
    return this.#order.flatMap((tag) => {
      const r = this.#runners.get(tag);
      const c = this.#components.get(tag);
      if (!r || !c) return [];
      const s = r.state;
      return [
        {
          tag,
          mode: c.mode,
          state: this.#pending.has(tag) && s.name === 'stopped' ? 'waiting-prerequisites' : s.name,
          ...(s.pid !== undefined && r.busy ? { pid: s.pid } : {}),
          since: s.since,
          restarts: r.restarts,
          ...(s.wakeAt !== undefined ? { wakeAt: s.wakeAt } : {}),
          ...(s.lastExit ? { lastExit: s.lastExit } : {}),
        },
      ];
    });
  }

  #byMode(mode: Component['mode']): ComponentRunner[] {
    return [...this.#runners.values()].filter((r) => r.policy.mode === mode);
  }
}
