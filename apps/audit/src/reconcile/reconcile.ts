import type { SqlRunner } from '../verify/chain-reader';

export interface ReconcileReport {
  /** Published outbox rows checked, per service schema. */
  checked: Record<string, number>;
  /** Published (relayed) more than `graceMs` ago but stored nowhere in the audit log: gaps. */
  missing: Array<{ service: string; id: string; publishedAt: string }>;
  /** Rows still unpublished after `graceMs`: a relay that is stuck or down. */
  unpublished: Record<string, number>;
  /** Events the store dead-lettered (they also appear in `missing`). */
  deadLettered: number;
  /** Of those, the ones no operator has marked resolved yet (`resolved_at`). */
  deadLetteredUnresolved: number;
}

const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

async function rows<T>(runner: SqlRunner, sql: string, params: unknown[]): Promise<T[]> {
  const r = (await runner.query(sql, params)) as T[] | { rows: T[] };
  return Array.isArray(r) ? r : r.rows;
}

/**
 * A9 reconciliation: outbox ids minus audit ids, per service. Needs a connection that may read
 * every service schema (an operator's, not a service role's: services never read each other's
 * schema), so it runs as a command (`custodian audit reconcile`, cli/run.ts), not inside a service.
 */
export async function reconcile(
  runner: SqlRunner,
  opts: { schemas: string[]; auditSchema?: string; graceMs?: number; since?: Date; limit?: number },
): Promise<ReconcileReport> {
  const audit = opts.auditSchema ?? 'audit';
  for (const s of [audit, ...opts.schemas]) if (!SCHEMA.test(s)) throw new Error(`not a schema name: ${s}`);
  const cutoff = new Date(Date.now() - (opts.graceMs ?? 60_000)).toISOString();
  const since = (opts.since ?? new Date(0)).toISOString();
  const report: ReconcileReport = { checked: {}, missing: [], unpublished: {}, deadLettered: 0, deadLetteredUnresolved: 0 };
  for (const schema of opts.schemas) {
    const [counts] = await rows<{ checked: number; unpublished: number }>(
      runner,
      `SELECT count(*) FILTER (WHERE published_at IS NOT NULL AND published_at < $1)::int AS checked,
              count(*) FILTER (WHERE published_at IS NULL AND created_at < $1)::int AS unpublished
         FROM ${schema}.outbox WHERE created_at >= $2`,
      [cutoff, since],
    );
    report.checked[schema] = counts.checked;
    report.unpublished[schema] = counts.unpublished;
    const gaps = await rows<{ id: string; published_at: Date }>(
      runner,
      `SELECT o.id::text, o.published_at FROM ${schema}.outbox o
        WHERE o.published_at IS NOT NULL AND o.published_at < $1 AND o.created_at >= $2
          AND NOT EXISTS (SELECT 1 FROM ${audit}.audit_event a WHERE a.id = o.id)
          AND NOT EXISTS (SELECT 1 FROM ${audit}.audit_event_archive a WHERE a.id = o.id)
        ORDER BY o.id LIMIT $3`,
      [cutoff, since, opts.limit ?? 1000],
    );
    for (const g of gaps) report.missing.push({ service: schema, id: g.id, publishedAt: new Date(g.published_at).toISOString() });
  }
  const [dl] = await rows<{ n: number; unresolved: number }>(
    runner,
    `SELECT count(*)::int AS n, count(*) FILTER (WHERE resolved_at IS NULL)::int AS unresolved FROM ${audit}.audit_dead_letter`,
    [],
  );
  report.deadLettered = dl.n;
  report.deadLetteredUnresolved = dl.unresolved;
  return report;
}
