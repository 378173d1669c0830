import type { EntityManager } from 'typeorm';
import { OutboxBackpressureError, OutboxWriter, type AuditEventInput } from './outbox.writer';

/** A manager whose insert builder keeps the payload text the writer would send to jsonb. */
function fakeManager(): { manager: EntityManager; payloads: string[] } {
  const payloads: string[] = [];
  const builder = {
    insert: () => builder,
    into: () => builder,
    values: () => builder,
    setParameter: (_name: string, value: string) => (payloads.push(value), builder),
    execute: async () => undefined,
  };
  return { manager: { createQueryBuilder: () => builder } as unknown as EntityManager, payloads };
}

const ORG = '0190a5a8-0000-7000-8000-000000000001';
const denial: AuditEventInput = { orgId: ORG, action: 'authz.denied', outcome: 'denied', target: { type: 'account' } };
const change: AuditEventInput = { orgId: ORG, action: 'objects.record.updated', outcome: 'success', target: { type: 'account' } };

describe('OutboxWriter', () => {
  it('writes NUL and other control characters as visible \\uXXXX text, so jsonb never refuses the row', async () => {
    const { manager, payloads } = fakeManager();
    const event = await new OutboxWriter('objects').append(manager, {
      ...denial,
      target: { type: 'opportunity\u0000', id: 'a\u001b[31m' },
      details: { route: 'GET /x\u202e', 'k\u0000': 1 },
    });
    expect(event.target).toEqual({ type: 'opportunity\\u0000', id: 'a\\u001b[31m' });
    expect(event.details).toEqual({ route: 'GET /x\\u202e', 'k\\u0000': 1 });
    // jsonb refuses the JSON escape \u0000 (and a raw NUL); an escaped backslash followed by "u0000" is plain text.
    expect(payloads[0]).not.toMatch(/(?<!\\)\\u0000/);
    expect(payloads[0]).not.toContain(String.fromCharCode(0));
    expect(JSON.parse(payloads[0])).toMatchObject({ target: { type: 'opportunity\\u0000' } });
  });

  it('refuses refusal events from half the backlog limit and changes only at the limit, saying why', async () => {
    const { manager } = fakeManager();
    const writer = new OutboxWriter('objects');
    writer.setMaxBacklog(10);
    writer.reportBacklog(4);
    await writer.append(manager, denial);
    writer.reportBacklog(5);
    const refused = await writer.append(manager, denial).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OutboxBackpressureError);
    expect(refused).toMatchObject({ code: 'audit_backlog', details: { unsent: 5, limit: 5 } });
    await writer.append(manager, change);
    writer.reportBacklog(10);
    await expect(writer.append(manager, change)).rejects.toMatchObject({
      code: 'audit_backlog',
      message: expect.stringMatching(/^audit backlog: 10 unsent events \(limit 10\)/),
    });
  });
});
