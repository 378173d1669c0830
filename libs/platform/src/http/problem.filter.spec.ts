import type { ArgumentsHost } from '@nestjs/common';
import { PolicyError } from '@custodian/policy';
import pino from 'pino';
import { CustodianException } from '../errors/custodian.exception';
import { ProblemFilter } from './problem.filter';

function run(
  exception: unknown,
  logger = pino({ level: 'silent' }),
): { status: number; body: Record<string, unknown>; headers: Record<string, string> } {
  const out = { status: 0, body: {} as Record<string, unknown>, headers: {} as Record<string, string> };
  const response = {
    headersSent: false,
    getHeader: () => 'rid-1',
    setHeader: (k: string, v: string) => (out.headers[k.toLowerCase()] = v),
    status(s: number) {
      out.status = s;
      return this;
    },
    type(t: string) {
      out.headers['content-type'] = t;
      return this;
    },
    send(text: string) {
      out.body = JSON.parse(text) as Record<string, unknown>;
      return this;
    },
  };
  const host = {
    switchToHttp: () => ({ getResponse: () => response, getRequest: () => ({ method: 'GET', path: '/x' }) }),
  } as unknown as ArgumentsHost;
  new ProblemFilter(logger).catch(exception, host);
  return out;
}

describe('ProblemFilter', () => {
  it('keeps a policy error precise: field_not_readable is a 403 with its own code and details', () => {
    const { status, body, headers } = run(new PolicyError('field_not_readable', { field: 'salary' }));
    expect(status).toBe(403);
    expect(headers['content-type']).toBe('application/problem+json');
    expect(body).toMatchObject({ status: 403, code: 'field_not_readable', details: { field: 'salary' }, requestId: 'rid-1' });
    expect(String(body.type)).toMatch(/field_not_readable$/);
  });

  it('maps R8 bound violations to 400', () => {
    expect(run(new PolicyError('filter_too_deep', { maxDepth: 16 })).status).toBe(400);
    expect(run(new PolicyError('in_list_too_long')).body.code).toBe('in_list_too_long');
  });

  it('maps a typed exception through the contracts table', () => {
    expect(run(CustodianException.notFound()).status).toBe(404);
  });

  it('answers 503 with Retry-After for a database that refused or is down', () => {
    const { status, headers, body } = run(Object.assign(new Error('permission denied for table outbox'), { code: '42501' }));
    expect(status).toBe(503);
    expect(headers['retry-after']).toBe('1');
    expect(body.code).toBe('service_unavailable');
  });

  it.each([
    ['too many connections (53300)', Object.assign(new Error('sorry, too many clients already'), { code: '53300' })],
    ['a full pool (pg: no connection within connectionTimeoutMillis)', new Error('timeout exceeded when trying to connect')],
    ['a dropped connection', new Error('Connection terminated unexpectedly')],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
  ])('answers 503, never 500, for an overloaded or unreachable database: %s', (_what, error) => {
    const { status, body } = run(error);
    expect(status).toBe(503);
    expect(body.code).toBe('service_unavailable');
  });

  it('asks clients to retry a typed 503 or 429 later', () => {
    const { ErrorCode } = jest.requireActual<typeof import('@custodian/contracts')>('@custodian/contracts');
    for (const code of [ErrorCode.ServiceUnavailable, ErrorCode.RateLimited, ErrorCode.BusNoResponders]) {
      expect(run(new CustodianException(code, 'later')).headers['retry-after']).toBe('1');
    }
    expect(run(CustodianException.forbidden()).headers['retry-after']).toBeUndefined();
  });

  it('answers a body that does not decode as its Content-Encoding with 400, an unknown encoding with 415', () => {
    // body-parser hands on zlib's error wrapped by http-errors: a status and expose, but no type.
    const zlib = Object.assign(new Error('incorrect header check'), { code: 'Z_DATA_ERROR', status: 400, statusCode: 400, expose: true });
    expect([run(zlib).status, run(zlib).body.code]).toEqual([400, 'bad_request']);
    const unsupported = Object.assign(new Error('unsupported content encoding "compress"'), {
      status: 415,
      expose: true,
      type: 'encoding.unsupported',
    });
    expect([run(unsupported).status, run(unsupported).body.code]).toEqual([415, 'unsupported_media_type']);
    const json = Object.assign(new SyntaxError('Unexpected token'), { status: 400, expose: true, type: 'entity.parse.failed' });
    expect(run(json).body.code).toBe('malformed_json');
    const tooLarge = Object.assign(new Error('request entity too large'), { status: 413, expose: true, type: 'entity.too.large' });
    expect(run(tooLarge).body.code).toBe('payload_too_large');
  });

  it('maps a value PostgreSQL could not cast to 400 and logs it as a warning without a stack', () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    for (const code of ['22P02', '22003', '22007', '22008', '22021']) {
      const error = Object.assign(new Error(`invalid input syntax (${code})`), { driverError: { code } });
      const { status, body } = run(error, logger);
      expect([status, body.code]).toEqual([400, 'validation_failed']);
    }
    expect(lines.length).toBe(5);
    expect(lines.every((l) => l.level === 40 && l.err === undefined && l.sqlState !== undefined)).toBe(true);
  });

  it('hides the text of an unknown error', () => {
    const { status, body } = run(new Error('secret=hunter2'));
    expect(status).toBe(500);
    expect(JSON.stringify(body)).not.toContain('hunter2');
  });
});
