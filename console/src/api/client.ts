import { ApiError, toApiError } from './problem';

export interface Tokens {
  accessToken: string;
  /** Epoch milliseconds at which the access token stops working. */
  expiresAt: number;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Answer the raw text instead of parsing JSON (exports). */
  text?: boolean;
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Refresh this long before expiry, so a request never leaves with a token about to die. */
const REFRESH_MARGIN_MS = 30_000;

/** Sent on every request; the auth routes refuse to read or set the refresh cookie without it (CSRF). */
export const CSRF_HEADER = 'x-custodian-csrf';

/**
 * The console's only way to the API. The access token lives in this object's memory and nowhere
 * else: not in localStorage or sessionStorage, where any script on the origin could read it. The
 * refresh token is an httpOnly cookie the page cannot read at all, scoped to `/api/v1/auth`, so a
 * reload resumes the session through `POST auth/refresh` (`resume()`). Refreshes rotate the cookie and
 * are single-flight, so two requests that both find the token old spend it once.
 */
export class ApiClient {
  private tokens: Tokens | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly listeners = new Set<(signedIn: boolean) => void>();

  constructor(
    private readonly fetchImpl: FetchLike = (input, init) => fetch(input, init),
    private readonly base = '/api/v1',
    private readonly now: () => number = () => Date.now(),
  ) {}

  get signedIn(): boolean {
    return this.tokens !== undefined;
  }

  onChange(listener: (signedIn: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async login(email: string, password: string): Promise<void> {
    const res = await this.send('POST', '/auth/login', { body: { email, password, session: 'cookie' } }, undefined);
    this.setTokens(res.body as TokenAnswer);
  }

  /**
   * After a reload: the refresh cookie, if the browser still has a live one, gives a new access token.
   * Answers whether the user is signed in; a refused cookie is simply "not signed in".
   */
  async resume(): Promise<boolean> {
    try {
      await this.refresh();
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
      throw error;
    }
  }

  /**
   * Ends the server session (it revokes the refresh family and clears the cookie); forgets the token
   * even when the server cannot be reached. An access token about to expire is refreshed first, so the
   * sign-out is not refused and the cookie not left behind.
   */
  async logout(): Promise<void> {
    if (this.tokens && this.tokens.expiresAt - this.now() < REFRESH_MARGIN_MS) await this.refresh().catch(() => undefined);
    const token = this.tokens?.accessToken;
    this.clear();
    if (token) await this.send('POST', '/auth/logout', {}, token).catch(() => undefined);
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    if (!this.tokens) throw new ApiError(401, 'not_signed_in', undefined, 'Sign in first', undefined);
    if (this.tokens.expiresAt - this.now() < REFRESH_MARGIN_MS) await this.refresh();
    try {
      return await this.send<T>(method, path, opts, this.tokens!.accessToken);
    } catch (error) {
      // A token revoked or expired early (clock skew, a server restart): one refresh, one retry.
      if (!(error instanceof ApiError) || error.status !== 401 || !this.tokens) throw error;
      await this.refresh();
      return this.send<T>(method, path, opts, this.tokens!.accessToken);
    }
  }

  /**
   * POSTs `body` (or GETs) asking for Server-Sent Events and hands each event to `onEvent` as it
   * arrives (the agent's answer streaming, a conversation's live events); `signal` ends it. A refusal
   * before the stream opens is an ApiError like any other.
   */
  async stream(
    path: string,
    body: unknown,
    onEvent: (event: string, data: unknown) => void,
    opts: { method?: 'GET' | 'POST'; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (!this.tokens) throw new ApiError(401, 'not_signed_in', undefined, 'Sign in first', undefined);
    if (this.tokens.expiresAt - this.now() < REFRESH_MARGIN_MS) await this.refresh();
    const method = opts.method ?? 'POST';
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.base}${path}`, {
        method,
        headers: {
          accept: 'text/event-stream, application/problem+json',
          ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
          authorization: `Bearer ${this.tokens!.accessToken}`,
          [CSRF_HEADER]: '1',
        },
        body: method === 'POST' ? JSON.stringify(body) : undefined,
        credentials: 'same-origin',
        cache: 'no-store',
        signal: opts.signal,
      });
    } catch {
      throw toApiError(0, { detail: 'The server could not be reached' });
    }
    if (!res.ok || !res.body) {
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      throw toApiError(res.status, parsed, res.headers.get('x-request-id'));
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const parsed = parseSse(buffer);
      buffer = parsed.rest;
      for (const e of parsed.events) onEvent(e.event, e.data);
    }
  }

  get<T>(path: string, opts?: RequestOptions): Promise<ApiResponse<T>> {
    return this.request<T>('GET', path, opts);
  }

  post<T>(path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>> {
    return this.request<T>('POST', path, { body: body ?? {}, headers });
  }

  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        // The body is empty: the credential is the httpOnly cookie the browser adds.
        const res = await this.send('POST', '/auth/refresh', { body: {} }, undefined);
        this.setTokens(res.body as TokenAnswer);
      } catch (error) {
        // A refused refresh (revoked, reused, expired) ends the session; a network error keeps it.
        if (error instanceof ApiError && error.status >= 400 && error.status < 500) this.clear();
        throw error;
      }
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private setTokens(answer: TokenAnswer): void {
    const wasSignedIn = this.signedIn;
    this.tokens = {
      accessToken: answer.accessToken,
      expiresAt: this.now() + (answer.expiresIn ?? 300) * 1000,
    };
    if (!wasSignedIn) this.emit();
  }

  private clear(): void {
    const was = this.signedIn;
    this.tokens = undefined;
    if (was) this.emit();
  }

  private emit(): void {
    for (const l of this.listeners) l(this.signedIn);
  }

  private async send<T>(method: string, path: string, opts: RequestOptions, token: string | undefined): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = {
      accept: 'application/json, application/problem+json',
      [CSRF_HEADER]: '1',
      ...opts.headers,
    };
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.base}${path}`, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        // Same-origin only; the one cookie there is (the refresh token) is scoped to /api/v1/auth.
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch {
      throw toApiError(0, { detail: 'The server could not be reached' });
    }
    const text = await res.text();
    if (!res.ok) {
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      throw toApiError(res.status, parsed, res.headers.get('x-request-id'));
    }
    const body = (opts.text ? text : text ? JSON.parse(text) : undefined) as T;
    return { status: res.status, body, headers: res.headers };
  }
}

interface TokenAnswer {
  accessToken: string;
  expiresIn?: number;
}

/** Complete Server-Sent Events in `buffer` (blocks ended by a blank line) and what is left over. */
export function parseSse(buffer: string): { events: Array<{ event: string; data: unknown }>; rest: string } {
  const events: Array<{ event: string; data: unknown }> = [];
  const blocks = buffer.replace(/\r\n/g, '\n').split('\n\n');
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length === 0) continue;
    const text = data.join('\n');
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    events.push({ event, data: value });
  }
  return { events, rest };
}
