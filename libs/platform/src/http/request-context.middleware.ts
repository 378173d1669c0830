import type { NextFunction, Request, Response } from 'express';
import { normalizeRequestId, requestContext } from '../context/request-context';

/** Gives every request an id (the caller's, if plain) and runs the rest of it inside its context. */
export function requestContextMiddleware(req: Request, res: Response, next: NextFunction): void {
  const requestId = normalizeRequestId(req.headers['x-request-id']);
  res.setHeader('x-request-id', requestId);
  requestContext.run({ requestId, ip: req.ip, userAgent: req.headers['user-agent'] }, () => next());
}
