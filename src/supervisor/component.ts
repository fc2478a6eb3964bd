// The runner of one supervised component: feeds events into the pure table (states.ts) and
// carries out its effects — spawning through a launcher, signals, the one timer, logs and
// exit actions. It holds the only mutable state: the current ComponentState and child.
import type { Logger } from '../log/logger.js';
import type { Child } from './spawn.js';
import { type ComponentPolicy, type ComponentState, type Effect, type Event, initialState, step } from './states.js';

/** Starts the component's process; the supervisor decides env, stdio and the exec chain. */
export type Launch = () => Child;
/** Runs a return-code `exec` command (fire and forget; its failure is only logged). */
export type RunExitAction = (command: string, env: Readonly<Record<string, string>>) => void;

export interface RunnerDeps {
  readonly policy: ComponentPolicy;
  readonly launch: Launch;
  readonly runExitAction: RunExitAction;
  readonly log: Logger;
  readonly now?: () => number;
  readonly random?: () => number;
  /** Told after every transition, so the supervisor can start waiting dependents. */
  readonly onChange?: (runner: ComponentRunner) => void;
  readonly disabled?: boolean;
}

export class ComponentRunner {
  #state: ComponentState;
  #child: Child | undefined;
  #timer: NodeJS.Timeout | undefined;
  #restarts = 0;
  readonly #deps: RunnerDeps;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #settled: Array<() => void> = [];

  constructor(deps: RunnerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#random = deps.random ?? Math.random;
    this.#state = initialState(this.#now(), deps.disabled ?? false);
  }

  get tag(): string {
    return this.#deps.policy.tag;
  }

  get policy(): ComponentPolicy {
    return this.#deps.policy;
  }

  get state(): ComponentState {
    return this.#state;
  }

  /** Spawns since the daemon started (the first start is not a restart). */
  get restarts(): number {
    return Math.max(0, this.#restarts - 1);
  }

  dispatch(event: Event): void {
    const { state, effects } = step(this.#state, event, { ...this.#deps.policy, now: this.#now(), random: this.#random });
    const changed = state !== this.#state;
    this.#state = state;
    for (const effect of effects) this.#execute(effect);
    if (changed) {
      this.#deps.onChange?.(this);
      if (!this.busy) this.#settled.splice(0).forEach((resolve) => resolve());
    }
  }

  /** True while a process exists or a spawn is in flight. */
  get busy(): boolean {
    const n = this.#state.name;
    return n === 'starting' || n === 'running' || n === 'stopping';
  }

  /** Resolves once no process is left (after a stop, or when a one-shot finished). */
  whenIdle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.#settled.push(resolve));
  }

  /** Stop, and resolve once the process is gone (SIGKILL after the shutdown timeout). */
  async stop(origin: 'admin' | 'shutdown'): Promise<void> {
    this.dispatch({ type: 'stop', origin });
    await this.whenIdle();
  }

  #execute(effect: Effect): void {
    switch (effect.type) {
      case 'spawn':
        this.#spawn();
        return;
      case 'kill':
        this.#child?.kill(effect.signal, effect.group);
        return;
      case 'arm':
        this.#disarm();
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.dispatch({ type: 'timer' });
        }, effect.ms);
        return;
      case 'disarm':
        this.#disarm();
        return;
      case 'log': {
        const fields = { component: this.tag, ...effect.fields };
        this.#deps.log[effect.level](fields, effect.event);
        return;
      }
      case 'exec':
        this.#deps.runExitAction(effect.command, effect.env);
        return;
      case 'notify':
        // No mailer in tpies (docs/supervision.md): say so where an admin will look.
        this.#deps.log.warn({ component: this.tag, recipients: effect.recipients.join(', ') }, 'notify not sent: tpies has no mailer');
        return;
    }
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #spawn(): void {
    let child: Child;
    try {
      child = this.#deps.launch();
    } catch (error) {
      // Preparing the spawn failed (unknown user, unreadable redirect file…): same as ENOENT.
      queueMicrotask(() => this.dispatch({ type: 'exit', spawnError: (error as Error).message, at: this.#now() }));
      return;
    }
    this.#child = child;
    this.#restarts++;
    child.exited.then(
      (exit) => {
        if (this.#child === child) this.#child = undefined;
        // A leftover grandchild in the group is stray by definition once its leader died.
        if (child.pid !== undefined) child.kill('SIGKILL', true);
        this.dispatch({ type: 'exit', ...exit, at: this.#now() });
      },
      (error: unknown) => this.dispatch({ type: 'exit', spawnError: String(error), at: this.#now() }),
    );
    if (child.pid !== undefined) this.dispatch({ type: 'spawned', pid: child.pid, at: this.#now() });
  }

  /** Release the timer (daemon exit); the process itself is stopped through stop(). */
  dispose(): void {
    this.#disarm();
  }
}
