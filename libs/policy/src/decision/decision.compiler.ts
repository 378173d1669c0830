import { parsePrincipalSnapshot } from '../model/model.validator';
import type { PrincipalSnapshot } from '../model/principal-snapshot.schema';
import { DEFAULT_WHERE_LIMITS, type WhereLimits } from '../objectql/where.ast';
import { DEFAULT_SQL_SCHEMA, type PolicySqlSchema } from '../sql/sql-schema.config';
import { Decision } from './decision';
import type { PolicyCatalog } from './policy-catalog';
import { PrincipalGrants } from './principal-grants';

export interface CompileOptions {
  readonly sqlSchema?: PolicySqlSchema;
  readonly whereLimits?: WhereLimits;
  /** Skip JSON Schema validation of the snapshot (only for snapshots this process built itself). */
  readonly trustedSnapshot?: boolean;
}

/** Compiles a principal snapshot against the org's object security catalog into a Decision. */
export function compileDecision(snapshot: PrincipalSnapshot | unknown, catalog: PolicyCatalog, options: CompileOptions = {}): Decision {
  const started = process.hrtime.bigint();
  const valid = options.trustedSnapshot ? (snapshot as PrincipalSnapshot) : parsePrincipalSnapshot(snapshot);
  const grants = new PrincipalGrants(valid, catalog);
  const decision = new Decision(grants, options.sqlSchema ?? DEFAULT_SQL_SCHEMA, options.whereLimits ?? DEFAULT_WHERE_LIMITS);
  decision.buildMicros = Number(process.hrtime.bigint() - started) / 1000;
  return decision;
}
