import pino from 'pino';
import { QueryFailedError } from 'typeorm';
import { createLogger } from './logger';

// Error logs must not carry record values: SQL parameters and the values PostgreSQL quotes in its
// error details (unique keys, failing rows) are replaced; the SQL text and error code stay.

describe('error logging redacts SQL values', () => {
  const capture = (): { lines: string[]; logger: pino.Logger } => {
    const lines: string[] = [];
    return { lines, logger: createLogger({ service: 'test', destination: { write: (l: string) => lines.push(l) } }) };
  };
  const driverError = (detail: string): Error =>
    Object.assign(new Error('duplicate key value violates unique constraint "u_email"'), { code: '23505', detail });

  it('replaces the parameters of a failed query with their count and types', () => {
    const { lines, logger } = capture();
    const err = new QueryFailedError(
      'INSERT INTO records (name, salary, email) VALUES ($1, $2, $3)',
      ['Alice Secret', 123456, 'alice@example.com'],
      driverError('Key (email)=(alice@example.com) already exists.'),
    );
    logger.error({ err, method: 'POST' }, 'unhandled error');
    const out = lines.join('');
    expect(out).not.toContain('Alice Secret');
    expect(out).not.toContain('123456');
    expect(out).not.toContain('alice@example.com');
    const logged = JSON.parse(lines[0]) as { err: { parameters: string; query: string; code: string; detail: string } };
    expect(logged.err.parameters).toBe('[3 redacted: string, number, string]');
    expect(logged.err.query).toContain('INSERT INTO records');
    expect(logged.err.code).toBe('23505');
    expect(logged.err.detail).toBe('Key (email)=([redacted]) already exists.');
  });

  it('redacts the failing row PostgreSQL prints for NOT NULL and CHECK violations, also behind a cause', () => {
    const { lines, logger } = capture();
    const failed = (): QueryFailedError =>
      new QueryFailedError('UPDATE t SET a = $1', ['Bob Private'], driverError('Failing row contains (7, Bob Private, null).'));
    logger.error({ err: failed() }, 'unhandled error');
    logger.warn({ err: Object.assign(new Error('write failed'), { cause: failed() }) }, 'request failed');
    const out = lines.join('');
    expect(out).not.toContain('Bob Private');
    expect(JSON.parse(lines[0]).err.detail).toBe('Failing row contains ([redacted]).');
  });

  it('leaves other errors as they were', () => {
    const { lines, logger } = capture();
    logger.error({ err: new Error('plain failure') }, 'x');
    expect(JSON.parse(lines[0]).err).toMatchObject({ type: 'Error', message: 'plain failure' });
  });
});
