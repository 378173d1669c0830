import { CustodianClient } from '@custodian/client';
import { ApiError, toApiError } from './problem';

export interface Tokens {
  accessToken: string;
  /** Epoch milliseconds at which the access token stops working. */
  expiresAt: number;
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiClientOptions {
  /** The network (tests pass a fake); the browser's fetch by default. */
  fetch?: FetchLike;
  /** The clock, in epoch milliseconds (tests move it). */
  now?: () => number;
  /** The origin the API is served from; the page's own by default (the console is same-origin only). */
  origin?: string;
}

/** Refresh this long before expiry, so a request never leaves with a token about to die. */
const REFRESH_MARGIN_MS = 30_000;

/** Sent on every request; the auth routes refuse to read or set the refresh cookie without it (CSRF). */
export const CSRF_HEADER = 'x-custodian-csrf';

const BASE = '/api/v1';

/**
 * The console's only way to the API. Pages call the generated, typed client (`api.client`, from
 * packages/client: a wrong path or body is a type error); its `fetch` is this session's, which adds the
 * bearer, the CSRF header, `credentials: 'same-origin'` and `cache: 'no-store'`, refreshes a token
 * about to expire, and refreshes and retries once on a 401. A failed answer rejects with the console's
 * ApiError (problem.ts), the same the page's problem display has always shown.
 *
 * The access token lives in this object's memory and nowhere else: not in localStorage or
 * sessionStorage, where any script on the origin could read it. The refresh token is an httpOnly cookie
 * the page cannot read at all, scoped to `/api/v1/auth`, so a reload resumes the session through
 * `POST auth/refresh` (`resume()`). Refreshes rotate the cookie and are single-flight, so two requests
 * that both find the token old spend it once.
 */
export class ApiClient {
  /** The typed API, signed in as this session. */
  readonly client: CustodianClient;
  /** The typed API without a token: sign-in. */
  private readonly anonymous: CustodianClient;
  private tokens: Tokens | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly listeners = new Set<(signedIn: boolean) => void>();
  private readonly fetchImpl: FetchLike;
  private readonly now: () => number;
  private readonly origin: string;

  constructor(options: ApiClientOptions = {}) {
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.now = options.now ?? (() => Date.now());
    this.origin = options.origin ?? globalThis.location?.origin ?? 'http://localhost';
    this.client = new CustodianClient({ baseUrl: this.origin, fetch: (input, init) => this.sessionFetch(input, init) });
    this.anonymous = new CustodianClient({ baseUrl: this.origin, fetch: (input, init) => this.answer(input, init ?? {}, undefined) });
  }

  get signedIn(): boolean {
    return this.tokens !== undefined;
  }

  onChange(listener: (signedIn: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async login(email: string, password: string): Promise<void> {
    this.setTokens(await this.anonymous.authLogin({ body: { email, password, session: 'cookie' } }));
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
    if (token) await this.anonymous.authLogout({ headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
  }

  /**
   * A typed call that also answers its HTTP status, for the routes where 202 means "held for approval"
   * rather than done. Each call gets its own client, so concurrent calls never see each other's status.
   */
  async withStatus<T>(call: (client: CustodianClient) => Promise<T>): Promise<{ status: number; body: T }> {
    const own = this.client.withToken(undefined);
    const body = await call(own);
    return { status: own.lastStatus, body };
  }

  /**
   * POSTs `body` (or GETs) asking for Server-Sent Events and hands each event to `onEvent` as it
   * arrives (the agent's answer streaming, a conversation's live events); `signal` ends it. A refusal
   * before the stream opens is an ApiError like any other. (The one raw helper: an event stream is not
   * a JSON answer the typed client can return.)
   */
  async stream(
    path: string,
    body: unknown,
    onEvent: (event: string, data: unknown) => void,
    opts: { method?: 'GET' | 'POST'; signal?: AbortSignal } = {},
  ): Promise<void> {
    const method = opts.method ?? 'POST';
    const res = await this.sessionFetch(`${BASE}${path}`, {
      method,
      headers: {
        accept: 'text/event-stream, application/problem+json',
        ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
      },
      body: method === 'POST' ? JSON.stringify(body) : undefined,
      signal: opts.signal,
    });
    if (!res.body) throw toApiError(res.status, undefined, res.headers.get('x-request-id'));
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

  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        // The body is empty: the credential is the httpOnly cookie the browser adds. (Raw: the
        // generated authRefresh requires a refreshToken in the body, the API-client flavour.)
        const res = await this.answer(
          `${BASE}/auth/refresh`,
          { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: '{}' },
          undefined,
        );
        this.setTokens((await res.json()) as TokenAnswer);
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

  /**
   * The typed client's fetch: the session's bearer on every call, a refresh before a token about to
   * expire, and one refresh and one retry when the server answers 401 (a token revoked or expired early:
   * clock skew, a server restart).
   */
  private async sessionFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    if (!this.tokens) throw new ApiError(401, 'not_signed_in', undefined, 'Sign in first', undefined);
    if (this.tokens.expiresAt - this.now() < REFRESH_MARGIN_MS) await this.refresh();
    try {
      return await this.answer(input, init, this.tokens!.accessToken);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401 || !this.tokens) throw error;
      await this.refresh();
      return this.answer(input, init, this.tokens!.accessToken);
    }
  }

  /** One request with the console's fixed settings; a failed answer rejects with an ApiError. */
  private async answer(input: string | URL | Request, init: RequestInit, token: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { ...headersOf(init.headers), [CSRF_HEADER]: '1' };
    headers.accept ??= 'application/json, application/problem+json';
    if (token) headers.authorization = `Bearer ${token}`;
    const url = this.sameOrigin(input);
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method: init.method ?? 'GET',
        headers,
        body: init.body,
        signal: init.signal,
        // Same-origin only; the one cookie there is (the refresh token) is scoped to /api/v1/auth.
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (error) {
      if (init.signal?.aborted) throw error;
      throw toApiError(0, { detail: 'The server could not be reached' });
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    throw toApiError(res.status, parsed, res.headers.get('x-request-id'));
  }

  /** The path and query of a URL on this origin: the console never sends its session anywhere else. */
  private sameOrigin(input: string | URL | Request): string {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url, this.origin);
    if (url.origin !== new URL(this.origin).origin) throw new TypeError(`refusing a request to another origin: ${url.origin}`);
    return `${url.pathname}${url.search}`;
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
}

interface TokenAnswer {
  accessToken: string;
  expiresIn?: number;
}

function headersOf(init: HeadersInit | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  new Headers(init).forEach((value, key) => {
    out[key] = value;
  });
  return out;
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

/**
 * The items of a list answer (the one envelope `{items, nextCursor}`, ADR 0018) as the page's own row
 * type. Takes only an answer whose type has `items`: a list still answering another shape is a type
 * error here, not an empty table at run time.
 */
export function itemsOf<T>(answer: { items: ReadonlyArray<object> }): T[] {
  return answer.items as unknown as T[];
}
