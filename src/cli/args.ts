// tpies' command line → validated options (node:util parseArgs; usage errors exit 64).
import { parseArgs } from 'node:util';
import { PiesError } from '../errors.js';

export type LogFormat = 'json' | 'pretty';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface TpiesOptions {
  readonly action: 'run' | 'lint' | 'dump-config' | 'help' | 'version';
  readonly configFile: string;
  readonly syntax: 'pies' | 'inetd';
  readonly includeDirs: readonly string[];
  /** With --lint: also print what a reload of the running daemon would change. */
  readonly diff: boolean;
  readonly daemon: boolean;
  readonly watch: boolean;
  readonly logLevel: LogLevel;
  readonly logFormat?: LogFormat;
  readonly logFile?: string;
  readonly pidfile?: string;
  readonly controlSocket?: string;
}

export const DEFAULT_CONFIG_FILE = '/etc/tpies.conf';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export const TPIES_USAGE = `usage: tpies [OPTIONS]
  -c, --config-file FILE    configuration file (default ${DEFAULT_CONFIG_FILE})
      --syntax pies|inetd   syntax of the configuration file (default pies)
  -I, --include-directory DIR  add DIR to the #include search path
  -t, --lint                check the configuration and exit (0 valid, 78 invalid)
      --diff                with --lint: show what a reload would change
      --dump-config         print the configuration in canonical form and exit
      --foreground          stay in the foreground (default)
      --daemon              detach from the terminal
      --watch               reload when the configuration files change
      --pidfile FILE        write the daemon's pid to FILE
      --control-socket PATH control API socket (default: see docs/control.md)
      --log-level LEVEL     fatal, error, warn, info (default), debug, trace
      --log-format FORMAT   json or pretty (default: pretty on a terminal, else json)
      --log-file FILE       append logs to FILE (reopened on SIGHUP)
  -h, --help                show this help
      --version             show the version
`;

// Parse tpies' argv (without the node and script names).
export function parseTpiesArgs(argv: readonly string[]): TpiesOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        'config-file': { type: 'string', short: 'c' },
        syntax: { type: 'string' },
        'include-directory': { type: 'string', short: 'I', multiple: true },
        lint: { type: 'boolean', short: 't' },
        diff: { type: 'boolean' },
        'dump-config': { type: 'boolean' },
        foreground: { type: 'boolean' },
        daemon: { type: 'boolean' },
        watch: { type: 'boolean' },
        pidfile: { type: 'string' },
        'control-socket': { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        'log-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    }));
  } catch (error) {
    throw new PiesError('ERR_USAGE', (error as Error).message.replace(/\. To specify.*$/s, ''));
  }
  const syntax = values.syntax ?? 'pies';
  if (syntax !== 'pies' && syntax !== 'inetd') throw new PiesError('ERR_USAGE', `unknown --syntax "${syntax}" (expected pies or inetd)`);
  const logLevel = (values['log-level'] ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new PiesError('ERR_USAGE', `unknown --log-level "${logLevel}" (expected ${LOG_LEVELS.join(', ')})`);
  const logFormat = values['log-format'];
  if (logFormat !== undefined && logFormat !== 'json' && logFormat !== 'pretty') throw new PiesError('ERR_USAGE', `unknown --log-format "${logFormat}" (expected json or pretty)`);
  if (values.daemon && values.foreground) throw new PiesError('ERR_USAGE', '--daemon and --foreground exclude each other');
  if (values.diff && !values.lint) throw new PiesError('ERR_USAGE', '--diff goes with --lint');
  const action = values.help ? 'help' : values.version ? 'version' : values.lint ? 'lint' : values['dump-config'] ? 'dump-config' : 'run';
  return {
    action,
    configFile: values['config-file'] ?? DEFAULT_CONFIG_FILE,
    syntax,
    includeDirs: values['include-directory'] ?? [],
    diff: values.diff ?? false,
    daemon: values.daemon ?? false,
    watch: values.watch ?? false,
    logLevel,
    ...(logFormat !== undefined ? { logFormat } : {}),
    ...(values['log-file'] !== undefined ? { logFile: values['log-file'] } : {}),
    ...(values.pidfile !== undefined ? { pidfile: values.pidfile } : {}),
    ...(values['control-socket'] !== undefined ? { controlSocket: values['control-socket'] } : {}),
  };
}
