import type { PrincipalSnapshot } from '@custodian/contracts';
import type { Bus, CustodianConfig } from '@custodian/platform';
import type { Logger } from 'pino';
import type { GatewayAudit } from '../audit/gateway-audit.service';
import type { ToolDefinition } from './tool-catalog';
import type { ToolCatalogService } from './tool-catalog.service';
import { ToolExecutor, type ToolCall } from './tool-executor.service';

const principal = {
  userId: '00000000-0000-4000-8000-000000000002',
  orgId: '00000000-0000-4000-8000-000000000001',
  apiKeyId: '00000000-0000-4000-8000-000000000003',
} as PrincipalSnapshot;
const recordId = '00000000-0000-4000-8000-0000000000aa';

const getRecord: ToolDefinition = {
  name: 'get_record',
  title: 'Get a record',
  description: 'One record',
  inputSchema: {
    type: 'object',
    properties: { object: { type: 'string' }, id: { type: 'string' } },
    required: ['object', 'id'],
    additionalProperties: false,
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
};

/** An executor whose audit rows are written only when the test says so (or fail). */
function executor() {
  const rows: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  const prepared: Array<{ action: string }> = [];
  let refuse: Error | undefined;
  const audit = {
    record: () => new Promise<void>((resolve, reject) => rows.push({ resolve, reject })),
    prepare: (_p: PrincipalSnapshot, event: { action: string }) => {
      if (refuse) throw refuse;
      const row = { id: `ev-${prepared.length + 1}`, ...event };
      prepared.push(row);
      return row;
    },
    write: () => new Promise<void>((resolve, reject) => rows.push({ resolve, reject })),
  } as unknown as GatewayAudit;
  const bus = { request: () => Promise.resolve({ record: { id: recordId, name: 'Acme' } }) } as unknown as Bus;
  const config = {
    agentGateway: { toolCallsPerMinute: 1000, maxArgumentBytes: 10_000, maxResultBytes: 100_000, maxRows: 50 },
  } as unknown as CustodianConfig;
  const catalog = { find: (_p: PrincipalSnapshot, name: string) => Promise.resolve(name === 'get_record' ? getRecord : undefined) };
  const logger = { error: () => undefined } as unknown as Logger;
  return {
    executor: new ToolExecutor(bus, config, catalog as unknown as ToolCatalogService, audit, logger),
    rows,
    prepared,
    refuseWith: (e: Error) => void (refuse = e),
  };
}

const call = (): ToolCall => ({
  name: 'get_record',
  args: { object: 'account', id: recordId },
  principal,
  session: { id: 's1', recordsRead: new Map(), toolCalls: 0 },
});

const settledYet = async (p: Promise<unknown>): Promise<boolean> => {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
};

describe('ToolExecutor: a result leaves only after its audit row', () => {
  it('begin answers while the row is being written; settle hands the result out only once it is committed', async () => {
    const { executor: tools, rows } = executor();
    const begun = await tools.begin(call());
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(begun.result)).toContain('Acme');
    const settled = tools.settle(begun);
    expect(await settledYet(settled)).toBe(false);
    rows[0].resolve();
    expect(await settled).toBe(begun.result);
  });

  it('call waits for the row as well', async () => {
    const { executor: tools, rows } = executor();
    const answer = tools.call(call());
    expect(await settledYet(answer)).toBe(false);
    expect(rows).toHaveLength(1);
    rows[0].resolve();
    expect(JSON.stringify(await answer)).toContain('Acme');
  });

  it('withholds a read whose audit row could not be written (begin, settle and call alike)', async () => {
    const { executor: tools, rows } = executor();
    const begun = await tools.begin(call());
    rows[0].reject(new Error('insert failed'));
    const withheld = await tools.settle(begun);
    expect(withheld.isError).toBe(true);
    expect(JSON.stringify(withheld)).not.toContain('Acme');
    expect(JSON.stringify(withheld)).toContain('could not be audited');

    const answer = tools.call(call());
    await settledYet(answer);
    rows[1].reject(new Error('insert failed'));
    expect(JSON.stringify(await answer)).not.toContain('Acme');
  });
});

describe('ToolExecutor: a read whose audit row the caller writes (deferAudit)', () => {
  it('prepares the row without writing it; the caller gets the row to commit with the result', async () => {
    const { executor: tools, rows, prepared } = executor();
    const begun = await tools.begin(call(), { deferAudit: true });
    expect(rows).toHaveLength(0);
    expect(prepared).toHaveLength(1);
    expect('auditRow' in begun && begun.auditRow.payload).toMatchObject({ id: 'ev-1', action: 'agent.tool.called' });
    expect(JSON.stringify(begun.result)).toContain('Acme');
  });

  it('settle writes a deferred row itself and hands the result out only once it is committed', async () => {
    const { executor: tools, rows } = executor();
    const begun = await tools.begin(call(), { deferAudit: true });
    const settled = tools.settle(begun);
    expect(await settledYet(settled)).toBe(false);
    expect(rows).toHaveLength(1);
    rows[0].resolve();
    expect(await settled).toBe(begun.result);
  });

  it('withholds a deferred read whose row was refused before any statement, or whose write failed', async () => {
    const refused = executor();
    refused.refuseWith(new Error('audit backpressure'));
    const begun = await refused.executor.begin(call(), { deferAudit: true });
    expect('auditRow' in begun).toBe(false);
    const withheld = await refused.executor.settle(begun);
    expect(withheld.isError).toBe(true);
    expect(JSON.stringify(withheld)).not.toContain('Acme');

    const failing = executor();
    const deferred = await failing.executor.begin(call(), { deferAudit: true });
    const answer = failing.executor.settle(deferred);
    await settledYet(answer);
    failing.rows[0].reject(new Error('insert failed'));
    expect(JSON.stringify(await answer)).toContain('could not be audited');
  });
});
