import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One Prometheus registry per process (not the global one, so tests can build many apps). */
export class MetricsService {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly busRequests: Counter<'subject' | 'outcome'>;

  constructor(defaultLabels: Record<string, string>) {
    this.registry.setDefaultLabels(defaultLabels);
    collectDefaultMetrics({ register: this.registry });
    this.httpDuration = new Histogram({
      name: 'custodian_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    this.busRequests = new Counter({
      name: 'custodian_bus_requests_total',
      help: 'Bus requests made by this process',
      labelNames: ['subject', 'outcome'],
      registers: [this.registry],
    });
  }

  /** Principal cache size and lookups (ADR 0011), read when /metrics is scraped. */
  observePrincipalCache(stats: () => { entries: number; hits: number; misses: number }): void {
    new Gauge({
      name: 'custodian_principal_cache_entries',
      help: 'Credentials whose principal snapshot this process holds',
      registers: [this.registry],
      collect() {
        this.set(stats().entries);
      },
    });
    new Gauge({
      name: 'custodian_principal_cache_lookups',
      help: 'Principal cache lookups since start, by result (hit: served from the cache; miss: asked identity)',
      labelNames: ['result'],
      registers: [this.registry],
      collect() {
        const s = stats();
        this.set({ result: 'hit' }, s.hits);
        this.set({ result: 'miss' }, s.misses);
      },
    });
  }
}
