import type { ArgumentsHost } from '@nestjs/common';
import { ERROR_HTTP_STATUS, ErrorCode } from '@custodian/contracts';
import { CustodianException, DenialAuditor, markDenialAudited, type Bus, type OutboxWriter } from '@custodian/platform';
import { PolicyError } from '@custodian/policy';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { DenialAuditFilter } from './denial-audit.filter';

const principal = { orgId: '0190a5a8-0000-7000-8000-000000000001', userId: '0190a5a8-0000-7000-8000-000000000002' };

function harness(opts: { appendFails?: boolean; budget?: number } = {}) {
  const appended: unknown[] = [];
  let settleAppend: () => void = () => undefined;
  const outbox = {
    append: (_m: unknown, event: unknown) =>
      new Promise((resolve, reject) => {
        settleAppend = () => (opts.appendFails ? reject(new Error('database down')) : (appended.push(event), resolve(event)));
      }),
  } as unknown as OutboxWriter;
  const ds = { transaction: (fn: (m: unknown) => Promise<unknown>) => fn({}) } as unknown as DataSource;
  const sent: Array<{ status: number; body: string }> = [];
  let status = 0;
  const res = {
    headersSent: false,
    getHeader: () => 'req-1',
    setHeader: () => undefined,
    status(s: number) {
      status = s;
      return this;
    },
    type() {
      return this;
    },
    send(body: string) {
      sent.push({ status, body });
      return this;
    },
  };
  const req = { principal, method: 'GET', params: { object: 'account', id: 'acc-1' }, route: { path: '/api/v1/data/:object/:id' } };
  const host = {
    getType: () => 'http',
    switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }),
  } as unknown as ArgumentsHost;
  const logger = pino({ level: 'silent' });
  const denials = new DenialAuditor({} as Bus, logger, { budget: opts.budget });
  const filter = new DenialAuditFilter(ds, outbox, denials, logger);
  return { filter, host, appended, sent, settle: () => settleAppend(), req, denials };
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setImmediate(r));
  if (!cond()) throw new Error('condition not reached');
};

describe('DenialAuditFilter (A6 for refusals inside the objects handlers)', () => {
  it('records a policy refusal as authz.denied, then answers with the problem document', async () => {
    const h = harness();
    h.filter.catch(new PolicyError('object_not_found', {}), h.host);
    await new Promise((r) => setImmediate(r)); // the write is under way, not yet settled
    expect(h.sent).toHaveLength(0); // the answer waits for the audit write
    h.settle();
    await until(() => h.sent.length === 1);
    expect(h.appended).toEqual([
      expect.objectContaining({
        orgId: principal.orgId,
        action: 'authz.denied',
        outcome: 'denied',
        target: { type: 'account', id: 'acc-1' },
        details: expect.objectContaining({ reason: 'object_not_found', route: 'GET /api/v1/data/:object/:id' }),
      }),
    ]);
    expect(h.sent[0].status).toBe(404);
  });

  it('the refusal stands when the audit write fails', async () => {
    const h = harness({ appendFails: true });
    h.filter.catch(CustodianException.forbidden('no'), h.host);
    h.settle();
    await until(() => h.sent.length === 1);
    expect(h.sent[0].status).toBe(403);
    expect(h.appended).toHaveLength(0);
  });

  it('does not record twice what the guard already audited, nor errors that are not refusals', () => {
    const h = harness();
    h.filter.catch(markDenialAudited(CustodianException.forbidden('Missing capability')), h.host);
    h.filter.catch(new CustodianException(ErrorCode.ValidationFailed, 'bad'), h.host);
    expect(h.sent.map((s) => s.status)).toEqual([403, ERROR_HTTP_STATUS[ErrorCode.ValidationFailed]]);
    expect(h.appended).toHaveLength(0);
  });

  it('aggregates repeats of one refusal, and answers 429 with the seconds left once the credential is over its budget', async () => {
    const h = harness({ budget: 2 });
    h.filter.catch(new PolicyError('object_not_found', {}), h.host);
    h.settle();
    await until(() => h.sent.length === 1);
    h.filter.catch(new PolicyError('object_not_found', {}), h.host); // a repeat: counted, not written
    await until(() => h.sent.length === 2);
    h.filter.catch(new PolicyError('object_not_found', {}), h.host); // over the budget of 2
    await until(() => h.sent.length === 3);
    expect(h.sent.map((s) => s.status)).toEqual([404, 404, 429]);
    expect(JSON.parse(h.sent[2].body)).toMatchObject({ code: 'rate_limited', details: { retryAfterSeconds: expect.any(Number) } });
    expect(h.appended).toHaveLength(1);
    const flushed = h.denials.flush();
    await new Promise((r) => setImmediate(r));
    h.settle();
    await flushed;
    expect(h.appended).toHaveLength(2);
    expect(h.appended[1]).toMatchObject({ details: expect.objectContaining({ reason: 'object_not_found', count: 2 }) });
  });

  it('does not record a refusal without a principal (the guard answered 401 before it)', () => {
    const h = harness();
    delete (h.req as { principal?: unknown }).principal;
    h.filter.catch(new PolicyError('object_not_found', {}), h.host);
    expect(h.sent.map((s) => s.status)).toEqual([404]);
  });
});
