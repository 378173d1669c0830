import { ErrorCode } from '@custodian/contracts';
import { API_PREFIX, CustodianException } from '@custodian/platform';
import type { Request, Response } from 'express';

/**
 * The browser session (the console): the refresh token travels in an httpOnly cookie that script on
 * the page cannot read, scoped to the auth routes, never sent cross-site (SameSite=Strict), and
 * Secure whenever the request came over https. The access token stays in the page's memory.
 */
export const REFRESH_COOKIE = 'custodian_refresh';
export const REFRESH_COOKIE_PATH = `/${API_PREFIX}/auth`.replace(/\/+/g, '/');
/** The custom header a cross-site form cannot send and a cross-origin fetch cannot send without a preflight. */
export const CSRF_HEADER = 'x-custodian-csrf';

const TOKEN = /^crt_[A-Za-z0-9_-]{16,256}$/;

/**
 * CSRF defence for every route that reads or sets the cookie: the custom header must be there, the
 * `Origin` must name this server's own host (not `null`, not absent), and a browser that says where
 * the request came from (`Sec-Fetch-Site`) must say same-origin. 403 otherwise.
 */
export function assertSameOriginBrowser(req: Request): void {
  const refuse = (why: string): never => {
    throw new CustodianException(ErrorCode.Forbidden, 'Cross-site request refused', { reason: why });
  };
  if (!req.get(CSRF_HEADER)) refuse(`missing ${CSRF_HEADER} header`);
  const fetchSite = req.get('sec-fetch-site');
  if (fetchSite !== undefined && fetchSite !== 'same-origin') refuse('not a same-origin request');
  const origin = req.get('origin');
  let host: string | undefined;
  try {
    host = origin && origin !== 'null' ? new URL(origin).host : undefined;
  } catch {
    host = undefined;
  }
  if (!host || host !== req.get('host')) refuse('origin does not match this server');
}

/** The refresh token from the request's cookie, or undefined (absent or not shaped like a token). */
export function readRefreshCookie(req: Request): string | undefined {
  const header = req.get('cookie');
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== REFRESH_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return TOKEN.test(value) ? value : undefined;
  }
  return undefined;
}

function attributes(req: Request): string {
  return `Path=${REFRESH_COOKIE_PATH}; HttpOnly; SameSite=Strict${req.secure ? '; Secure' : ''}`;
}

export function setRefreshCookie(req: Request, res: Response, token: string, maxAgeSeconds: number): void {
  res.append('Set-Cookie', `${REFRESH_COOKIE}=${token}; ${attributes(req)}; Max-Age=${maxAgeSeconds}`);
}

export function clearRefreshCookie(req: Request, res: Response): void {
  res.append('Set-Cookie', `${REFRESH_COOKIE}=; ${attributes(req)}; Max-Age=0`);
}
