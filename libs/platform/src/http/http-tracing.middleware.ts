import { SpanStatusCode } from '@opentelemetry/api';
import type { NextFunction, Request, Response } from 'express';
import { startServerSpan, tracing, withSpan } from '../tracing/tracing';

/**
 * One server span per HTTP request (named by its route template once routed, e.g.
 * `GET /api/v1/data/:object`), ended when the response is finished or the client went away.
 * A no-op unless tracing is on.
 */
export function httpTracingMiddleware(req: Request, res: Response, next: NextFunction): void {
  if (!tracing.enabled) return next();
  const span = startServerSpan(req.method, req.headers, { 'http.request.method': req.method, 'url.path': req.path });
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    const route = (req.route as { path?: unknown } | undefined)?.path;
    span.updateName(typeof route === 'string' ? `${req.method} ${route}` : req.method);
    if (typeof route === 'string') span.setAttribute('http.route', route);
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  };
  res.once('finish', end);
  res.once('close', end);
  withSpan(span, next);
}
