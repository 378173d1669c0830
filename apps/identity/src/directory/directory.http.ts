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

/** Bounded offset paging for directory lists (R8): limit 1..200 (default 50), offset 0..10,000. */
export function pageOf(query: Record<string, unknown>): Page {
  const read = (name: string, def: number, max: number, min: number): number => {
    const raw = query[name];
    if (raw === undefined) return def;
    if (typeof raw !== 'string' || !/^\d{1,6}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new CustodianException(ErrorCode.ValidationFailed, `Invalid ${name}`, {
        issues: [{ path: `/${name}`, message: `must be an integer between ${min} and ${max}` }],
      });
    }
    return Number(raw);
  };
  for (const key of Object.keys(query)) {
    if (key !== 'limit' && key !== 'offset') {
      throw new CustodianException(ErrorCode.ValidationFailed, 'Unknown query parameter', {
        issues: [{ path: `/${key.slice(0, 64)}`, message: 'unknown' }],
      });
    }
  }
  return { limit: read('limit', 50, MAX_LIMIT, 1), offset: read('offset', 0, MAX_OFFSET, 0) };
}

export interface PageOf<T> {
  items: T[];
  limit: number;
  offset: number;
  /** Offset of the next page, absent on the last one. */
  nextOffset?: number;
}

export function pageResult<T>(rows: T[], page: Page): PageOf<T> {
  const more = rows.length > page.limit;
  const items = more ? rows.slice(0, page.limit) : rows;
  const next = page.offset + page.limit;
  return { items, limit: page.limit, offset: page.offset, ...(more && next <= MAX_OFFSET ? { nextOffset: next } : {}) };
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
