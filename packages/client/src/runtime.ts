/** How the generated client finds an operation: its method, path template and body media type. */
export interface OperationInfo {
  method: string;
  path: string;
  pathParams: readonly string[];
  bodyType?: string;
  /** The answer is not JSON (a file, NDJSON, an event stream): the method returns the fetch Response. */
  raw?: boolean;
}

export interface ClientOptions {
  /** e.g. http://127.0.0.1:3000 (no trailing /api/v1). */
  baseUrl: string;
  /** An access token or an API key, sent as `Authorization: Bearer`. */
  token?: string;
  /** Another fetch (tests, proxies); the global one by default. */
  fetch?: typeof fetch;
  /** Headers sent with every call (e.g. a user agent). */
  headers?: Record<string, string>;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Extra headers for this call. */
  headers?: Record<string, string>;
}

/** An answer that is not 2xx: the problem document's `code`, the request id to quote, and the status. */
export class CustodianApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly requestId: string | undefined,
    readonly detail: string,
    readonly details?: unknown,
  ) {
    super(`${code}: ${detail}${requestId ? ` (request ${requestId})` : ''}`);
    this.name = 'CustodianApiError';
  }
}

interface CallArgs {
  query?: Record<string, string | undefined>;
  body?: unknown;
  headers?: Record<string, string | undefined>;
  [param: string]: unknown;
}

/** The transport under the generated methods: URL building, JSON in and out, problem+json to errors. */
export class ClientRuntime {
  /** The status of the last answer (e.g. 201 created vs 202 queued for approval). */
  lastStatus = 0;

  constructor(
    protected readonly options: ClientOptions,
    private readonly operations: Readonly<Record<string, OperationInfo>>,
  ) {}

  /** A client for the same server with another credential. */
  withToken(token: string | undefined): this {
    const Ctor = this.constructor as new (options: ClientOptions) => this;
    return new Ctor({ ...this.options, token });
  }

  protected async call(operationId: string, input: object | undefined, options: CallOptions | undefined): Promise<unknown> {
    const args = input as CallArgs | undefined;
    const op = this.operations[operationId];
    if (!op) throw new Error(`unknown operation ${operationId}`);
    let path = op.path;
    for (const name of op.pathParams) {
      const value = args?.[name];
      if (typeof value !== 'string' || value === '') throw new TypeError(`${operationId}: path parameter ${name} is required`);
      path = path.replace(`{${name}}`, encodeURIComponent(value));
    }
    const url = new URL(path, this.options.baseUrl.replace(/\/+$/, '') + '/');
    for (const [k, v] of Object.entries(args?.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...this.options.headers };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    for (const [k, v] of Object.entries({ ...args?.headers, ...options?.headers })) if (v !== undefined) headers[k] = v;
    let body: string | undefined;
    if (op.bodyType !== undefined && args?.body !== undefined) {
      headers['content-type'] = op.bodyType;
      body = JSON.stringify(args.body);
    }
    const res = await (this.options.fetch ?? fetch)(url, { method: op.method, headers, body, signal: options?.signal });
    this.lastStatus = res.status;
    if (!res.ok) throw await problemOf(res);
    if (op.raw) return res;
    const text = await res.text();
    return text ? (JSON.parse(text) as unknown) : undefined;
  }
}

async function problemOf(res: Response): Promise<CustodianApiError> {
  const requestId = res.headers.get('x-request-id') ?? undefined;
  const text = await res.text().catch(() => '');
  try {
    const p = JSON.parse(text) as { code?: unknown; detail?: unknown; requestId?: unknown; details?: unknown };
    return new CustodianApiError(
      res.status,
      typeof p.code === 'string' ? p.code : `http_${res.status}`,
      typeof p.requestId === 'string' && p.requestId ? p.requestId : requestId,
      typeof p.detail === 'string' ? p.detail : res.statusText,
      p.details,
    );
  } catch {
    return new CustodianApiError(res.status, `http_${res.status}`, requestId, text.slice(0, 200) || res.statusText);
  }
}
