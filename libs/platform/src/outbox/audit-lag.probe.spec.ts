import pino from 'pino';
import { Registry } from 'prom-client';
import { AuditLagProbe } from './audit-lag.probe';

const logger = pino({ level: 'silent' });

describe('AuditLagProbe', () => {
  it('pauses at the limit, resumes below it, and asks NATS at most once per interval', async () => {
    let lag = 10;
    let asked = 0;
    let now = 1_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    const registry = new Registry();
    const probe = new AuditLagProbe(
      { consumerLag: async () => (asked++, lag) },
      { consumer: 'audit-store', maxLag: 10, intervalMs: 250, registry, service: 'objects' },
      logger,
    );
    try {
      expect(await probe.shouldPause()).toBe(true);
      lag = 0;
      expect(await probe.shouldPause()).toBe(true); // within the interval the last answer stands
      expect(asked).toBe(1);
      now += 250;
      expect(await probe.shouldPause()).toBe(false);
      expect(asked).toBe(2);
      expect(await registry.getSingleMetricAsString('custodian_outbox_relay_paused')).toMatch(/service="objects"} 0/);
      expect(await registry.getSingleMetricAsString('custodian_audit_consumer_lag')).toMatch(/custodian_audit_consumer_lag 0/);
    } finally {
      jest.restoreAllMocks();
    }
  });

  it('never pauses when the lag cannot be read, or when switched off', async () => {
    const failing = new AuditLagProbe(
      { consumerLag: () => Promise.reject(new Error('consumer not found')) },
      { consumer: 'x', maxLag: 1 },
      logger,
    );
    expect(await failing.shouldPause()).toBe(false);
    const off = new AuditLagProbe({ consumerLag: async () => 1e9 }, { consumer: 'x', maxLag: 0 }, logger);
    expect(await off.shouldPause()).toBe(false);
  });

  it('relays of several services in one process share the gauges of one registry', () => {
    const registry = new Registry();
    const opts = { consumer: 'audit-store', maxLag: 5, registry };
    expect(() => {
      new AuditLagProbe({ consumerLag: async () => 0 }, { ...opts, service: 'identity' }, logger);
      new AuditLagProbe({ consumerLag: async () => 0 }, { ...opts, service: 'objects' }, logger);
    }).not.toThrow();
  });
});
