/**
 * One-dimensional array parameters in PostgreSQL's binary format (what `array_recv` reads), for
 * bulk statements such as `INSERT … SELECT FROM unnest($1::uuid[], …)`.
 *
 * node-postgres sends an array as a text literal: every element is quoted and its backslashes and
 * quotes escaped in JavaScript, and PostgreSQL scans the literal back character by character. For
 * a batch of JSON documents — all quotes — that was the largest single cost of the audit store's
 * insert on both sides. A Buffer parameter goes out in binary instead (pg-protocol marks it so):
 * a small header, then each element's length and bytes, with nothing escaped and nothing to
 * unescape. The statement text stays the same; the cast (`$1::text[]`) tells PostgreSQL the type,
 * and it checks the element type named in the header against it.
 *
 * Elements are stored exactly as the text path would store them: strings are written as UTF-8 the
 * way node-postgres writes them, `null`/`undefined` become SQL NULL.
 */

/** Element type OIDs (pg_type.oid) — fixed in every PostgreSQL version. */
const OID = { int8: 20, text: 25, uuid: 2950, jsonb: 3802 } as const;
const HEADER = 20; // ndim, flags, element type, dimension size, lower bound
const JSONB_VERSION = 1;
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Nullable<T> = T | null | undefined;

/** `text[]` in binary. */
export function pgTextArray(values: ReadonlyArray<Nullable<string>>): Buffer {
  return stringArray(OID.text, values, false);
}

/**
 * `jsonb[]` in binary: each element is JSON text (PostgreSQL parses and checks it as it would the
 * text form; the binary form only adds a version byte).
 */
export function pgJsonbArray(values: ReadonlyArray<Nullable<string>>): Buffer {
  return stringArray(OID.jsonb, values, true);
}

/** `int8[]` (bigint) in binary. Every element must be a safe integer — a bug otherwise, not data. */
export function pgInt8Array(values: ReadonlyArray<Nullable<number>>): Buffer {
  for (const v of values) {
    if (v != null && !Number.isSafeInteger(v)) throw new RangeError(`int8 array element ${String(v)} is not a safe integer`);
  }
  return fixedWidthArray(OID.int8, 8, values, (buf, v, at) => buf.writeBigInt64BE(BigInt(v), at));
}

/**
 * `uuid[]` in binary when every element is a UUID in its canonical 8-4-4-4-12 hex form. Anything
 * else — PostgreSQL also accepts braces or missing hyphens, and must refuse garbage with its own
 * error — returns the values unchanged, so the text path lets PostgreSQL judge them exactly as
 * before.
 */
export function pgUuidArray(values: ReadonlyArray<Nullable<string>>): Buffer | ReadonlyArray<Nullable<string>> {
  for (const v of values) if (v != null && !CANONICAL_UUID.test(v)) return values;
  return fixedWidthArray(OID.uuid, 16, values, (buf, v, at) =>
    buf.write(v.slice(0, 8) + v.slice(9, 13) + v.slice(14, 18) + v.slice(19, 23) + v.slice(24), at, 16, 'hex'),
  );
}

/** An array of a fixed-width type: each element is its length (`width`, or -1 for NULL) and `width` bytes. */
function fixedWidthArray<T>(
  oid: number,
  width: number,
  values: ReadonlyArray<Nullable<T>>,
  write: (buf: Buffer, value: T, at: number) => unknown,
): Buffer {
  let nulls = 0;
  for (const v of values) if (v == null) nulls++;
  const size = HEADER + values.length * 4 + (values.length - nulls) * width;
  const buf = header(Buffer.allocUnsafe(size), oid, values.length, nulls > 0);
  let at = HEADER;
  for (const v of values) {
    if (v == null) {
      at = buf.writeInt32BE(-1, at);
      continue;
    }
    at = buf.writeInt32BE(width, at);
    write(buf, v, at);
    at += width;
  }
  return buf;
}

function stringArray(oid: number, values: ReadonlyArray<Nullable<string>>, jsonb: boolean): Buffer {
  const extra = jsonb ? 1 : 0;
  const lengths = new Array<number>(values.length);
  let size = HEADER;
  let nulls = false;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v == null) {
      nulls = true;
      lengths[i] = -1;
      size += 4;
    } else {
      lengths[i] = Buffer.byteLength(v, 'utf8');
      size += 4 + extra + lengths[i];
    }
  }
  const buf = header(Buffer.allocUnsafe(size), oid, values.length, nulls);
  let at = HEADER;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v == null) {
      at = buf.writeInt32BE(-1, at);
      continue;
    }
    at = buf.writeInt32BE(lengths[i] + extra, at);
    if (jsonb) at = buf.writeUInt8(JSONB_VERSION, at);
    at += buf.write(v, at, lengths[i], 'utf8');
  }
  return buf;
}

/** The array header; an empty array has no dimensions (PostgreSQL's own form of '{}'). */
function header(buf: Buffer, oid: number, length: number, nulls: boolean): Buffer {
  if (length === 0) {
    buf.writeInt32BE(0, 0);
    buf.writeInt32BE(0, 4);
    buf.writeInt32BE(oid, 8);
    return buf.subarray(0, 12);
  }
  buf.writeInt32BE(1, 0);
  buf.writeInt32BE(nulls ? 1 : 0, 4);
  buf.writeInt32BE(oid, 8);
  buf.writeInt32BE(length, 12);
  buf.writeInt32BE(1, 16);
  return buf;
}
