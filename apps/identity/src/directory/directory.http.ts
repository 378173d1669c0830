import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, isUniqueViolation } from '@custodian/platform';
import type { Request } from 'express';
import { QueryFailedError } from 'typeorm';

export type AuthedRequest = Request & { principal: PrincipalSnapshot };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const MAX_LIMIT = 200;
export const MAX_OFFSET = 10_000;

/** A path id that is not even a uuid names nothing in this org: 404, like an id of another org (R1). */
export function idParam(value: string, what = 'Resource'): string {
  if (!UUID.test(value)) throw CustodianException.notFound(`${what} not found`);
  return value;
}

export interface Page {
  limit: number;
  offset: number;
}

const CURSOR = /^offset:(\d{1,6})$/;
const invalid = (name: string, message: string): CustodianException =>
  new CustodianException(ErrorCode.ValidationFailed, `Invalid ${name}`, { issues: [{ path: `/${name}`, message }] });

/** The opaque cursor of a directory list's next page (it carries the offset; clients only pass it back). */
export const encodeCursor = (offset: number): string => Buffer.from(`offset:${offset}`).toString('base64url');

/**
 * Bounded paging for directory lists (R8): `limit` 1..200 (default 50) and the `cursor` of the
 * previous answer (at most 10,000 rows deep). One list shape everywhere (ADR 0018).
 */
export function pageOf(query: Record<string, unknown>): Page {
  for (const key of Object.keys(query)) {
    if (key !== 'limit' && key !== 'cursor') {
      throw new CustodianException(ErrorCode.ValidationFailed, 'Unknown query parameter', {
        issues: [{ path: `/${key.slice(0, 64)}`, message: 'unknown' }],
      });
    }
  }
  const rawLimit = query.limit;
  let limit = 50;
  if (rawLimit !== undefined) {
    if (typeof rawLimit !== 'string' || !/^\d{1,6}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > MAX_LIMIT)
      throw invalid('limit', `must be an integer between 1 and ${MAX_LIMIT}`);
    limit = Number(rawLimit);
  }
  const rawCursor = query.cursor;
  let offset = 0;
  if (rawCursor !== undefined) {
    const match =
      typeof rawCursor === 'string' && rawCursor.length <= 64 ? CURSOR.exec(Buffer.from(rawCursor, 'base64url').toString()) : null;
    if (!match || Number(match[1]) > MAX_OFFSET) throw invalid('cursor', 'must be the nextCursor of a previous page');
    offset = Number(match[1]);
  }
  return { limit, offset };
}

/** A list answer: `{items, nextCursor}`, `nextCursor` null on the last page (ADR 0018). */
export interface PageOf<T> {
  items: T[];
  nextCursor: string | null;
}

export function pageResult<T>(rows: T[], page: Page): PageOf<T> {
  const more = rows.length > page.limit;
  const items = more ? rows.slice(0, page.limit) : rows;
  const next = page.offset + page.limit;
  return { items, nextCursor: more && next <= MAX_OFFSET ? encodeCursor(next) : null };
}

/** Unique-key violations become a 409 naming what collided; anything else is rethrown. */
export async function conflictOnDuplicate<T>(work: Promise<T>, message: string): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof QueryFailedError && isUniqueViolation(error)) {
      throw new CustodianException(ErrorCode.Conflict, message);
    }
    throw error;
  }
}

export function badRequest(message: string): CustodianException {
  return new CustodianException(ErrorCode.BadRequest, message);
}

export function conflict(message: string): CustodianException {
  return new CustodianException(ErrorCode.Conflict, message);
}
