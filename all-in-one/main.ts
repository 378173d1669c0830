import { ConfigError, installSignalHandlers, createLogger } from '@custodian/platform';
import { startAllInOne } from './all-in-one';
import { demoEnabled } from './demo';

const startedAt = process.hrtime.bigint();

startAllInOne(process.env, { demo: demoEnabled(process.env) }).then(
  (host) => {
    const logger = createLogger({ level: host.config.log.level, service: 'all-in-one' });
    installSignalHandlers(host, logger);
    const ms = Number(process.hrtime.bigint() - startedAt) / 1e6;
    logger.info({ port: host.port, startupMs: Math.round(ms) }, 'ready');
    process.stdout.write(`Custodian is running at ${host.url} (ready in ${Math.round(ms)} ms). Ctrl-C stops it.\n`);
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
    } else {
      process.stderr.write(`Custodian failed to start: ${describeFailure(error)}\n`);
    }
    process.exit(1);
  },
);

/** Something useful even for an error without a message (or a rejection with no error at all). */
function describeFailure(error: unknown): string {
  if (error instanceof Error) return error.stack || error.message || error.name;
  if (error === undefined || error === null) return 'no reason was given (run with LOG_LEVEL=debug to see more)';
  return typeof error === 'object' ? JSON.stringify(error) : String(error);
}
