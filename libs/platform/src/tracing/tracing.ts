import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import type { Logger } from 'pino';

/**
 * OpenTelemetry tracing, off unless an OTLP endpoint is configured. Off, nothing is loaded beyond
 * the API, no span object is made and nothing leaves the process: every hook below checks
 * `tracing.enabled` first and calls straight through. On, spans go to one OTLP/HTTP exporter in
 * batches; W3C `traceparent` carries the trace into bus requests (NATS headers, and the
 * in-process bus's carrier) and back out of incoming HTTP requests.
 */
export const tracing = { enabled: false };

const TRACER = 'custodian';
let active: { refs: number; shutdown: () => Promise<void> } | undefined;

export interface TracingHandle {
  shutdown(): Promise<void>;
}

/**
 * Starts the SDK (once per process; later hosts share it) when `tracesUrl` is set. Returns a
 * handle whose shutdown flushes pending spans; without a URL, a handle that does nothing.
 */
export async function startTracing(tracesUrl: string | undefined, serviceName: string, logger: Logger): Promise<TracingHandle> {
  if (!tracesUrl) return { shutdown: async () => undefined };
  if (!active) {
    // Loaded only when configured: the SDK and exporter cost start-up time nobody else should pay.
    const [
      { BasicTracerProvider, BatchSpanProcessor },
      { OTLPTraceExporter },
      { resourceFromAttributes },
      { AsyncLocalStorageContextManager },
      { W3CTraceContextPropagator },
    ] = await Promise.all([
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/context-async-hooks'),
      import('@opentelemetry/core'),
    ]);
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': serviceName }),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl }), { scheduledDelayMillis: 1000 })],
    });
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const restoreSql = await traceSqlStatements();
    tracing.enabled = true;
    logger.info({ tracesUrl: redactUrl(tracesUrl) }, 'tracing: exporting spans over OTLP/HTTP');
    active = {
      refs: 0,
      shutdown: async () => {
        tracing.enabled = false;
        restoreSql();
        await provider.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'tracing: flush failed'));
        trace.disable();
        context.disable();
        propagation.disable();
      },
    };
  }
  const current = active;
  current.refs++;
  let done = false;
  return {
    async shutdown() {
      if (done) return;
      done = true;
      if (--current.refs === 0 && active === current) {
        active = undefined;
        await current.shutdown();
      }
    },
  };
}

function redactUrl(u: string): string {
  const parsed = new URL(u);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

const headerGetter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** The span of an incoming HTTP request, child of the caller's `traceparent` when it sends one. */
export function startServerSpan(name: string, headers: Record<string, string | string[] | undefined>, attributes: Attributes): Span {
  const parent = propagation.extract(ROOT_CONTEXT, headers, headerGetter);
  return trace.getTracer(TRACER).startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
}

/** Runs `fn` with `span` as the active span. */
export function withSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** The W3C trace context of the active span as headers (empty when tracing is off or no span is active). */
export function traceHeaders(): Record<string, string> {
  const carrier: Record<string, string> = {};
  if (tracing.enabled) propagation.inject(context.active(), carrier, recordSetter);
  return carrier;
}

const recordSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * A client span around an outgoing call (a bus request), its headers handed to `fn` to send along.
 * Off, a plain call: no async frame, no allocation.
 */
export function clientSpan<T>(name: string, attributes: Attributes, fn: (headers: Record<string, string>) => Promise<T>): Promise<T> {
  return tracing.enabled ? tracedClient(name, attributes, fn) : fn(NO_HEADERS);
}

async function tracedClient<T>(name: string, attributes: Attributes, fn: (headers: Record<string, string>) => Promise<T>): Promise<T> {
  const span = trace.getTracer(TRACER).startSpan(name, { kind: SpanKind.CLIENT, attributes });
  try {
    return await context.with(trace.setSpan(context.active(), span), () => fn(traceHeaders()));
  } catch (error) {
    failSpan(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** A server span around handling an incoming call (a bus request), child of the trace context it carried. Off, a plain call. */
export function serverSpan<T>(
  name: string,
  carrier: Record<string, string | string[] | undefined> | undefined,
  attributes: Attributes,
  fn: () => Promise<T>,
): Promise<T> {
  return tracing.enabled ? tracedServer(name, carrier, attributes, fn) : fn();
}

async function tracedServer<T>(
  name: string,
  carrier: Record<string, string | string[] | undefined> | undefined,
  attributes: Attributes,
  fn: () => Promise<T>,
): Promise<T> {
  const span = startServerSpan(name, carrier ?? {}, attributes);
  try {
    return await withSpan(span, fn);
  } catch (error) {
    failSpan(span, error);
    throw error;
  } finally {
    span.end();
  }
}

export function failSpan(span: Span, error: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
}

type QueryFn = (this: unknown, ...args: unknown[]) => unknown;

/**
 * A span for each SQL statement the `pg` driver sends inside a trace (statements outside any trace,
 * such as the outbox relay's polling, start none). The statement text is recorded — values are
 * always bound parameters and are never recorded. Returns the undo.
 */
async function traceSqlStatements(): Promise<() => void> {
  const pg = await import('pg');
  const proto = (pg.Client ?? (pg as unknown as { default: typeof pg }).default.Client).prototype as unknown as { query: QueryFn };
  const original = proto.query;
  proto.query = function tracedQuery(this: unknown, ...args: unknown[]): unknown {
    if (!tracing.enabled || trace.getSpan(context.active()) === undefined) return original.apply(this, args);
    const first = args[0] as string | { text?: string; submit?: unknown } | undefined;
    const text = typeof first === 'string' ? first : first?.text;
    const operation = (text ?? '').trimStart().split(/\s/, 1)[0]?.toUpperCase() || 'SQL';
    const span = trace.getTracer(TRACER).startSpan(operation, {
      kind: SpanKind.CLIENT,
      attributes: { 'db.system.name': 'postgresql', 'db.operation.name': operation, 'db.query.text': (text ?? '').slice(0, 2000) },
    });
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const callback = args[last] as (error: unknown, ...rest: unknown[]) => void;
      args[last] = (error: unknown, ...rest: unknown[]) => {
        if (error) failSpan(span, error);
        span.end();
        callback(error, ...rest);
      };
      return original.apply(this, args);
    }
    let result: unknown;
    try {
      result = original.apply(this, args);
    } catch (error) {
      failSpan(span, error);
      span.end();
      throw error;
    }
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then(
        () => span.end(),
        (error: unknown) => {
          failSpan(span, error);
          span.end();
        },
      );
    } else span.end();
    return result;
  };
  return () => {
    proto.query = original;
  };
}
