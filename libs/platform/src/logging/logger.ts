import type { LoggerService } from '@nestjs/common';
import pino, { type Logger } from 'pino';
import { requestContext } from '../context/request-context';
import { serializeError } from './error-redaction';

export type { Logger } from 'pino';

/** Structured JSON logs; every line carries the request id of the request (or bus message) in scope. */
export function createLogger({
  level = 'info',
  service,
  destination,
}: {
  level?: string;
  service: string;
  /** Where lines go (tests); stdout otherwise. */
  destination?: pino.DestinationStream;
}): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: () => {
      const requestId = requestContext.requestId();
      return requestId ? { requestId } : {};
    },
    redact: {
      paths: ['password', '*.password', 'token', '*.token', 'secret', '*.secret', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
    // Failed queries carry record values (parameters, PostgreSQL's error detail): never logged.
    serializers: { err: serializeError },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Routes NestJS's own logging into the same pino logger. */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, context?: string): void {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }
}
