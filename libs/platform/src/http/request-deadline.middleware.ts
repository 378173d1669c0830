import { ErrorCode } from '@custodian/contracts';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { sendProblem } from './problem-response';

/** Work that may take long on purpose and has its own bound (see isLongRunning). */
const LONG_RUNNING_PREFIXES = [
  '/mcp', // Streamable HTTP; the session idle limit
  '/health/',
  '/metrics',
  '/api/v1/agent/conversations/', // an agent turn waits for the model; the runtime's model time cap
  '/api/v1/audit/verify', // walks a whole chain
  '/api/v1/audit/export',
  '/api/v1/bundles/', // applies a whole bundle in one transaction
  '/api/v1/approvals/bulk', // decides and applies up to 1,000 actions; bounded by its item limit
];

/**
 * Routes that answer over a long time on purpose and keep their own limits: the MCP endpoint,
 * Server-Sent Events and agent turns (the agent runtime's model time cap), file content (streamed
 * within the server's request timeout), audit verification and export, bundle apply, the probes.
 */
export function isLongRunning(req: Request): boolean {
  const path = req.path;
  return (
    LONG_RUNNING_PREFIXES.some((p) => path.startsWith(p)) ||
    path.includes('/files/') ||
    String(req.headers.accept ?? '').includes('text/event-stream')
  );
}

/**
 * A per-request deadline: a handler that has not started its answer within `timeoutMs` gets a
 * 503 `request_timeout` problem (with Retry-After) instead of holding the client. Whatever the
 * handler writes afterwards is dropped. The work itself is not cancelled: a change may still
 * commit, so the problem says the outcome is unknown (retry with the same Idempotency-Key).
 */
export function requestDeadlineMiddleware(timeoutMs: number, logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (timeoutMs <= 0 || isLongRunning(req)) return next();
    const timer = setTimeout(() => {
      if (res.headersSent || res.writableEnded) return;
      logger.warn({ method: req.method, path: req.path, timeoutMs }, 'request deadline passed');
      res.setHeader('Retry-After', '1');
      sendProblem(
        res,
        ErrorCode.RequestTimeout,
        `The request did not complete within ${timeoutMs} ms; the outcome of a change is unknown — retry it with the same Idempotency-Key`,
        { timeoutMs },
      );
      silence(res);
    }, timeoutMs);
    timer.unref();
    // 'close' follows every response: after 'finish', or when the client went away first.
    res.once('close', () => clearTimeout(timer));
    next();
  };
}

/** After the deadline answer: the late handler's writes go nowhere instead of throwing. */
function silence(res: Response): void {
  const r = res as unknown as Record<string, unknown>;
  const noop = function (this: Response): Response {
    return this;
  };
  r.setHeader = noop;
  r.writeHead = noop;
  r.write = () => true;
  r.end = noop;
}
