// Process signals → daemon actions: SIGHUP reloads (and reopens the log), SIGTERM and SIGINT
// stop gracefully. Never SIGUSR1: Node reserves it for the inspector.
import type { Daemon } from './daemon.js';
import type { Logger } from './log/logger.js';
import { detach } from './log/detach.js';

// Wire signals to `daemon`; returns a function that removes the handlers again.
export function handleSignals(daemon: Daemon, log: Logger): () => void {
  const onHup = (): void => {
    log.info({ signal: 'SIGHUP' }, 'reload requested');
    detach(daemon.reload(), log, 'reload');
  };
  const onStop = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'stop requested');
    detach(daemon.stop(), log, 'stop');
  };
  process.on('SIGHUP', onHup);
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  return () => {
    process.off('SIGHUP', onHup);
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
  };
}
