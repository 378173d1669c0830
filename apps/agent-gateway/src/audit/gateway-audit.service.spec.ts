import type { PrincipalSnapshot } from '@custodian/contracts';
import { OutboxWriter } from '@custodian/platform';
import type { DataSource } from 'typeorm';
import { GatewayAudit } from './gateway-audit.service';

const principal = {
  userId: '00000000-0000-4000-8000-000000000002',
  orgId: '00000000-0000-4000-8000-000000000001',
} as PrincipalSnapshot;
const event = (tool: string) => ({ action: 'agent.tool.called', outcome: 'success' as const, target: { type: 'tool', id: tool } });

/** A data source whose INSERTs wait until released, recording each statement's rows. */
function fakeDataSource(fail: (payloads: string[]) => boolean) {
  const statements: string[][] = [];
  const releases: Array<() => void> = [];
  const ds = {
    query: (_sql: string, params: unknown[]) => {
      const payloads = params.filter((_, i) => i % 3 === 2).map((p) => (JSON.parse(p as string) as { target: { id: string } }).target.id);
      statements.push(payloads);
      return new Promise<void>((resolve, reject) => releases.push(() => (fail(payloads) ? reject(new Error('insert failed')) : resolve())));
    },
  };
  return { ds: ds as unknown as DataSource, statements, releaseAll: () => releases.splice(0).forEach((r) => r()) };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('GatewayAudit group commit', () => {
  it('writes the first event at once and the ones that arrive meanwhile together; each caller resolves only after its row', async () => {
    const { ds, statements, releaseAll } = fakeDataSource(() => false);
    const audit = new GatewayAudit(ds, new OutboxWriter('agent-gateway'));
    const done: string[] = [];
    const first = audit.record(principal, event('a')).then(() => done.push('a'));
    const later = ['b', 'c', 'd'].map((t) => audit.record(principal, event(t)).then(() => done.push(t)));
    await tick();
    expect(statements).toEqual([['a']]);
    expect(done).toEqual([]);
    releaseAll();
    await first;
    await tick();
    expect(statements).toEqual([['a'], ['b', 'c', 'd']]);
    expect(done).toEqual(['a']);
    releaseAll();
    await Promise.all(later);
    expect(done).toEqual(['a', 'b', 'c', 'd']);
  });

  it('a failed batch is retried event by event: only the event that cannot be written fails its caller', async () => {
    const { ds, statements, releaseAll } = fakeDataSource((payloads) => payloads.includes('bad'));
    const audit = new GatewayAudit(ds, new OutboxWriter('agent-gateway'));
    const first = audit.record(principal, event('a'));
    const results = ['b', 'bad', 'c'].map((t) =>
      audit.record(principal, event(t)).then(
        () => 'ok',
        () => 'failed',
      ),
    );
    await tick();
    releaseAll();
    await first;
    for (let i = 0; i < 5; i++) {
      await tick();
      releaseAll();
    }
    expect(await Promise.all(results)).toEqual(['ok', 'failed', 'ok']);
    expect(statements).toEqual([['a'], ['b', 'bad', 'c'], ['b'], ['bad'], ['c']]);
  });

  it('refuses at once, before any statement, when the outbox pushes back', async () => {
    const { ds, statements } = fakeDataSource(() => false);
    const writer = new OutboxWriter('agent-gateway');
    writer.setMaxBacklog(1);
    writer.reportBacklog(1);
    const audit = new GatewayAudit(ds, writer);
    await expect(audit.record(principal, event('a'))).rejects.toMatchObject({ code: 'audit_backlog' });
    expect(statements).toEqual([]);
  });
});
