// Connection limits of one component (pies: max-instances, max-rate, max-ip-connections):
// counted exactly in this process, refused with a reason instead of ever disabling the
// listener (inetd stops a "looping" service for 10 minutes; tpies recovers by itself).

export type LimitHit = 'max-instances' | 'max-rate' | 'max-ip-connections';

export interface LimitSettings {
  readonly maxInstances?: number;
  /** Connections per minute; 0 or absent = unlimited. */
  readonly maxRate?: number;
  readonly maxIpConnections?: number;
}

const MINUTE_MS = 60_000;

export class ConnectionLimits {
  #live = 0;
  readonly #perIp = new Map<string, number>();
  /** Accept times within the last minute, oldest first. */
  #recent: number[] = [];

  #settings: LimitSettings;

  constructor(settings: LimitSettings) {
    this.#settings = settings;
  }

  /** New limits from a reload; live counts carry over. */
  update(settings: LimitSettings): void {
    this.#settings = settings;
  }

  get live(): number {
    return this.#live;
  }

  // Admit one connection from `ip` at `now` (a monotonic clock, so that a wall clock set back
  // cannot hold the rate window shut), or say which limit refuses it. An admitted connection
  // must be released exactly once.
  admit(ip: string | undefined, now: number): LimitHit | undefined {
    const { maxInstances, maxRate, maxIpConnections } = this.#settings;
    if (maxInstances !== undefined && this.#live >= maxInstances) return 'max-instances';
    if (maxIpConnections !== undefined && ip !== undefined && (this.#perIp.get(ip) ?? 0) >= maxIpConnections) return 'max-ip-connections';
    if (maxRate) {
      while (this.#recent.length > 0 && now - this.#recent[0]! >= MINUTE_MS) this.#recent.shift();
      if (this.#recent.length >= maxRate) return 'max-rate';
      this.#recent.push(now);
    }
    this.#live++;
    if (ip !== undefined) this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    return undefined;
  }

  release(ip: string | undefined): void {
    this.#live = Math.max(0, this.#live - 1);
    if (ip === undefined) return;
    const n = (this.#perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(ip);
    else this.#perIp.set(ip, n);
  }
}
