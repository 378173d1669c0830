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
  /**
   * Started from the OAuth consent page: the uid of that authorization interaction. The callback hands
   * the signed-in session back to exactly that interaction (a sealed cookie), never to a URL.
   */
  interaction?: string;
}

/** An OIDC sign-in's session handed to one OAuth interaction (the consent page) of the same browser. */
export interface InteractionHandoff {
  uid: string;
  org: string;
  userId: string;
  sessionId: string;
  /** Expiry, epoch milliseconds. */
  exp: number;
}

export const HANDOFF_COOKIE = 'custodian_oauth_idp';
/** The consent step must follow the sign-in within this time. */
export const HANDOFF_TTL_SECONDS = 300;

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
    return this.sealWith(`oidc-login:${s.org}`, s);
  }

  /** The state, or undefined when the text is not one this installation sealed for `org`, or it expired. */
  open(org: string, sealed: string, now = Date.now()): LoginState | undefined {
    const s = this.openWith<LoginState>(`oidc-login:${org}`, sealed);
    return s && s.org === org && typeof s.exp === 'number' && s.exp > now ? s : undefined;
  }

  /** Seals a handoff for the interaction `h.uid` (the associated data: it opens for that uid only). */
  sealHandoff(h: InteractionHandoff): string {
    return this.sealWith(`oauth-handoff:${h.uid}`, h);
  }

  /** The handoff, or undefined unless this installation sealed it for interaction `uid` and it is not expired. */
  openHandoff(uid: string, sealed: string, now = Date.now()): InteractionHandoff | undefined {
    const h = this.openWith<InteractionHandoff>(`oauth-handoff:${uid}`, sealed);
    return h && h.uid === uid && typeof h.exp === 'number' && h.exp > now ? h : undefined;
  }

  private sealWith(aad: string, value: unknown): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(aad));
    const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return [iv, body, cipher.getAuthTag()].map((b) => b.toString('base64url')).join('.');
  }

  private openWith<T>(aad: string, sealed: string): T | undefined {
    const parts = sealed.split('.');
    if (parts.length !== 3 || sealed.length > 4096) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(parts[0]!, 'base64url'));
      decipher.setAAD(Buffer.from(aad));
      decipher.setAuthTag(Buffer.from(parts[2]!, 'base64url'));
      const text = Buffer.concat([decipher.update(Buffer.from(parts[1]!, 'base64url')), decipher.final()]).toString('utf8');
      return JSON.parse(text) as T;
    } catch {
      return undefined;
    }
  }
}

/** The path of the handoff cookie: the consent page of that one interaction. */
export function handoffCookiePath(uid: string): string {
  return `/oauth/interaction/${encodeURIComponent(uid)}`;
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
