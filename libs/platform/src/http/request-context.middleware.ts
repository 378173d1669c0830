import type { NextFunction, Request, Response } from 'express';
import { normalizeRequestId, requestContext } from '../context/request-context';
import type { ClientAddressResolver } from './client-address';

/**
 * Gives every request an id (the caller's, if plain) and its client address (through the trusted
 * proxies only), and runs the rest of it inside its context: the login throttle, audit events and
 * the rate limiter all read the address from there.
 */
export function requestContextMiddleware(addresses: ClientAddressResolver) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const requestId = normalizeRequestId(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    const ip = addresses.resolve(req.socket.remoteAddress, req.headers);
    requestContext.run({ requestId, ip, userAgent: req.headers['user-agent'] }, () => next());
  };
}
