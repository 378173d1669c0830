import type { NextFunction, Request, Response } from 'express';
import { assertSafeJson } from '../validation/forbidden-keys';

/** Runs after body parsing: no prototype-pollution keys and bounded depth in any JSON body. */
export function safeJsonMiddleware(req: Request, _res: Response, next: NextFunction): void {
  try {
    if (req.body !== undefined) assertSafeJson(req.body);
    assertSafeJson(req.query);
    next();
  } catch (error) {
    next(error);
  }
}
