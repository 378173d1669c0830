import { CustodianClient } from '../../packages/client/src';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
export type Json = any;

export interface ApiResponse {
  status: number;
  body: Json;
  headers: Headers;
}

/** A small client for `/api/v1` (optionally as a bearer credential); `base` is read at call time (set in beforeAll). */
export function apiClient(base: () => string): {
  call(method: string, path: string, token: string | undefined, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  ok(response: Promise<ApiResponse>, status?: number): Promise<Json>;
} {
  return {
    async call(method, path, token, body, headers = {}) {
      const res = await fetch(`${base()}/api/v1${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...headers,
        },
        // A string is sent as is, so tests can send malformed JSON.
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as Json) : undefined, headers: res.headers };
    },
    async ok(response, status = 200) {
      const res = await response;
      if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
      return res.body;
    },
  };
}

/**
 * The generated typed client (`packages/client`, docs/api.md "Typed client") for a server, as a
 * bearer credential when `token` is given. The e2e suites call the real servers through it, so a
 * route whose answer or path drifted from the client fails a test; a refusal throws
 * `CustodianApiError` (`status`, `code`). Raw `fetch` stays for what the client cannot send or
 * show: malformed input, response headers.
 */
export function typedClient(baseUrl: string, token?: string): CustodianClient {
  return new CustodianClient({ baseUrl, token });
}
