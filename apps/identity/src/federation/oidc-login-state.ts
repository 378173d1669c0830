import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { API_PREFIX } from '@custodian/platform';

/** What a sign-in started with, kept in the browser between /start and /callback. */
export interface LoginState {
  org: string;
  state: string;
  nonce: string;
  verifier: string;
  /** Expiry, epoch milliseconds. */
  exp: number;
  /** `cookie`: a browser (the console) — the callback sets the refresh cookie and redirects to /console/. */
  session?: 'cookie';
}

export const LOGIN_STATE_COOKIE = 'custodian_oidc';
/** A sign-in must come back within this time. */
export const LOGIN_STATE_TTL_SECONDS = 600;

export function loginStateCookiePath(orgId: string): string {
  return `/${API_PREFIX}/auth/oidc/${orgId}`.replace(/\/+/g, '/');
}

/**
 * Seals the login state (state, nonce, PKCE verifier) into an AES-256-GCM cookie under a key derived
 * from the master key: nothing is stored server-side, the browser that started the sign-in is the
 * only one that can finish it (login CSRF), and the client cannot read or change the values. The org
 * is the associated data, so a cookie of one org does not open at another org's callback.
 */
export class LoginStateSealer {
  private readonly key: Buffer;

  constructor(masterKey: Buffer) {
    this.key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'custodian/oidc-login-state/v1', 32));
  }

  seal(s: LoginState): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(`oidc-login:${s.org}`));
    const body = Buffer.concat([cipher.update(JSON.stringify(s), 'utf8'), cipher.final()]);
    return [iv, body, cipher.getAuthTag()].map((b) => b.toString('base64url')).join('.');
  }

  /** The state, or undefined when the text is not one this installation sealed for `org`, or it expired. */
  open(org: string, sealed: string, now = Date.now()): LoginState | undefined {
    const parts = sealed.split('.');
    if (parts.length !== 3 || sealed.length > 4096) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(parts[0]!, 'base64url'));
      decipher.setAAD(Buffer.from(`oidc-login:${org}`));
      decipher.setAuthTag(Buffer.from(parts[2]!, 'base64url'));
      const text = Buffer.concat([decipher.update(Buffer.from(parts[1]!, 'base64url')), decipher.final()]).toString('utf8');
      const s = JSON.parse(text) as LoginState;
      return s.org === org && typeof s.exp === 'number' && s.exp > now ? s : undefined;
    } catch {
      return undefined;
    }
  }
}

/** One cookie's value from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
