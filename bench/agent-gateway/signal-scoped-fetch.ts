/**
 * A `fetch` for the MCP SDK's `StreamableHTTPClientTransport` (its `fetch` option) that does not pile
 * abort listeners onto one signal.
 *
 * The transport passes one long-lived `AbortSignal` (its own, aborted on close) to every request.
 * Node's fetch (undici) adds an abort listener to the signal it is given and removes it only when
 * that request object is garbage-collected, so a busy client collects thousands on the one signal:
 * `MaxListenersExceededWarning: … 2019 abort listeners added to [AbortSignal]`, memory held until a
 * collection, and every `addEventListener` walks the growing list (a per-request cost that grows).
 *
 * Here each request gets its own signal, linked to the caller's only while it is in flight: the link
 * is removed when the answer's body has been read to its end, fails or is cancelled (or when the
 * caller's signal fires — a `once` listener). Aborting the caller's signal still aborts the request
 * and its body, so closing the transport still ends its event stream.
 */
export function signalScopedFetch(base: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const outer = init?.signal;
    if (!outer) return base(input, init);
    const inner = new AbortController();
    const forward = (): void => inner.abort(outer.reason);
    const unlink = (): void => outer.removeEventListener('abort', forward);
    if (outer.aborted) inner.abort(outer.reason);
    else outer.addEventListener('abort', forward, { once: true });
    let res: Response;
    try {
      res = await base(input, { ...init, signal: inner.signal });
    } catch (error) {
      unlink();
      throw error;
    }
    if (!res.body || NULL_BODY_STATUSES.has(res.status)) {
      unlink();
      return res;
    }
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            unlink();
            controller.close();
          } else controller.enqueue(value);
        } catch (error) {
          unlink();
          controller.error(error);
        }
      },
      cancel(reason) {
        unlink();
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/** Statuses whose Response may not carry a body. */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);
