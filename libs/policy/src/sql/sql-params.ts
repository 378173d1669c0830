/** A parameterized SQL fragment. Values are always bound parameters, never spliced into text. */
export interface SqlFragment {
  readonly text: string;
  readonly params: readonly unknown[];
}

/** Collects bound parameters; `offset` lets a caller AND the fragment into a query that already has $1..$offset. */
export class SqlParams {
  readonly values: unknown[] = [];
  private readonly memo = new Map<unknown, string>();

  constructor(private readonly offset = 0) {}

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.offset + this.values.length}`;
  }

  /** Same placeholder for repeated scalar values (user id, org id) — keeps the text short and stable. */
  shared(value: string | number | boolean): string {
    const key = `${typeof value}:${String(value)}`;
    let placeholder = this.memo.get(key);
    if (placeholder === undefined) {
      placeholder = this.add(value);
      this.memo.set(key, placeholder);
    }
    return placeholder;
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `schema.table` with each part quoted. */
export function qualifiedName(schema: string | undefined, table: string): string {
  return schema ? `${quoteIdent(schema)}.${quoteIdent(table)}` : quoteIdent(table);
}
