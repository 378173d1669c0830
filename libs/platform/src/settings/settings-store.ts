import { ErrorCode } from '@custodian/contracts';
import type { DataSource, EntityManager } from 'typeorm';
import { CustodianException } from '../errors/custodian.exception';
import { parseReference, resolveReference, type ReferencePolicy } from './secret-reference';
import { SettingsCipher } from './settings-cipher';

export type SettingType = 'string' | 'url' | 'integer' | 'boolean' | 'enum' | 'secret';

/**
 * One setting a service accepts; anything not in its catalog is refused. A name with one `*`
 * segment is a template for a family of named settings (`provider.*.base_url` accepts
 * `provider.local.base_url`); the segment must match SETTING_NAME_SEGMENT.
 */
export interface SettingDefinition {
  readonly name: string;
  readonly type: SettingType;
  readonly description: string;
  readonly enum?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  readonly maxLength?: number;
  readonly default?: string | number | boolean;
}

/** A setting as the API shows it: secrets only say whether and where they are set, never their value. */
export interface SettingView {
  name: string;
  type: SettingType;
  description: string;
  value?: string | number | boolean | null;
  default?: string | number | boolean;
  secret?: { set: boolean; source: 'encrypted' | 'env' | 'file' | null; reference?: string };
  version: number;
  updatedAt: string | null;
}

/** What an audit event may say about a change: never a secret value. */
export interface SettingChange {
  name: string;
  change: 'set' | 'cleared';
  /** A write-only setting (named so, not `secret`, which the audit redaction would hash). */
  writeOnly: boolean;
  source?: 'encrypted' | 'env' | 'file';
  from?: unknown;
  to?: unknown;
}

/** What a `*` segment of a templated setting name may be. */
export const SETTING_NAME_SEGMENT = /^[a-z][a-z0-9_]{0,31}$/;

/** A settings row as stored (`rows` reads them; a caller may fetch them in its own query, see SETTINGS_SELECT). */
export interface SettingRow {
  name: string;
  kind: 'value' | 'sealed' | 'reference';
  value: unknown;
  sealed: string | null;
  reference: string | null;
  version: number;
  updated_at: Date | string;
}
type Row = SettingRow;

/** The table every service that keeps settings creates in its own schema (see settingsTableSql). */
export const SETTINGS_TABLE = 'setting';

/** The columns `resolveRows` needs, for a caller that reads the rows in a query of its own. */
export const SETTINGS_SELECT = `SELECT name, kind, value, sealed, reference, version, updated_at FROM "${SETTINGS_TABLE}"`;

/** The DDL of the settings table, for a service's migration. */
export function settingsTableSql(): string[] {
  return [
    `CREATE TABLE "${SETTINGS_TABLE}" ("org_id" uuid NOT NULL, "name" character varying(128) NOT NULL, "kind" character varying(16) NOT NULL, "value" jsonb, "sealed" text, "reference" character varying(1024), "version" integer NOT NULL DEFAULT 1, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_by" uuid, CONSTRAINT "PK_setting" PRIMARY KEY ("org_id", "name"), CONSTRAINT "CHK_setting_kind" CHECK ("kind" IN ('value', 'sealed', 'reference')))`,
  ];
}

function invalid(path: string, message: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, 'Invalid setting', { issues: [{ path, message }] });
}

/**
 * Per-org settings of one service: plain values as JSON, secrets sealed with the master key
 * (SettingsCipher) or kept as an `env:` / `file:` reference read when used. Secrets are write-only:
 * `view` never returns them and `SettingChange` never carries them, so neither the API nor the audit
 * trail can leak one. Writes take the caller's transaction so the audit event commits with them.
 */
export class SettingsStore {
  private readonly byName: ReadonlyMap<string, SettingDefinition>;
  private readonly templates: ReadonlyArray<{ prefix: string; suffix: string; definition: SettingDefinition }>;

  constructor(
    readonly definitions: readonly SettingDefinition[],
    private readonly cipher: SettingsCipher | undefined,
    private readonly references: ReferencePolicy,
  ) {
    this.byName = new Map(definitions.filter((d) => !d.name.includes('*')).map((d) => [d.name, d]));
    this.templates = definitions
      .filter((d) => d.name.includes('*'))
      .map((d) => {
        const [prefix, suffix] = d.name.split('*') as [string, string];
        return { prefix, suffix, definition: d };
      });
  }

  /** The definition of a setting name: a fixed one, or a template's with the name filled in. */
  definition(name: string): SettingDefinition | undefined {
    const fixed = this.byName.get(name);
    if (fixed) return fixed;
    for (const t of this.templates) {
      if (!name.startsWith(t.prefix) || !name.endsWith(t.suffix) || name.length <= t.prefix.length + t.suffix.length) continue;
      if (SETTING_NAME_SEGMENT.test(name.slice(t.prefix.length, name.length - t.suffix.length))) return { ...t.definition, name };
    }
    return undefined;
  }

  /** Fixed definitions, then the templated settings this org has set (by name). */
  private definitionsOf(rows: ReadonlyMap<string, Row>): SettingDefinition[] {
    const named = [...rows.keys()]
      .filter((n) => !this.byName.has(n))
      .sort()
      .map((n) => this.definition(n))
      .filter((d): d is SettingDefinition => d !== undefined);
    return [...this.byName.values(), ...named];
  }

  async view(db: DataSource | EntityManager, orgId: string): Promise<SettingView[]> {
    const rows = await this.rows(db, orgId);
    return this.definitionsOf(rows).map((d) => {
      const row = rows.get(d.name);
      const base = {
        name: d.name,
        type: d.type,
        description: d.description,
        version: row?.version ?? 0,
        updatedAt: row ? new Date(row.updated_at).toISOString() : null,
      };
      if (d.type === 'secret') {
        const source = !row ? null : row.kind === 'sealed' ? 'encrypted' : row.reference?.startsWith('env:') ? 'env' : 'file';
        return { ...base, secret: { set: Boolean(row), source, ...(row?.kind === 'reference' ? { reference: row.reference! } : {}) } };
      }
      return {
        ...base,
        value: row ? (row.value as SettingView['value']) : null,
        ...(d.default !== undefined ? { default: d.default } : {}),
      };
    });
  }

  /** Sets one setting; `input` is the value, or for a secret `{ value }` or `{ reference }`. */
  async put(m: EntityManager, orgId: string, name: string, input: unknown, actorUserId: string | undefined): Promise<SettingChange> {
    const d = this.definition(name);
    if (!d) throw CustodianException.notFound('Unknown setting');
    const before = (await this.rows(m, orgId, name)).get(name);
    let row: Pick<Row, 'kind' | 'value' | 'sealed' | 'reference'>;
    let change: SettingChange;
    if (d.type === 'secret') {
      if (!input || typeof input !== 'object' || Array.isArray(input))
        throw invalid('/value', 'a secret is { "value": "…" } or { "reference": "env:NAME" | "file:/path" }');
      const keys = Object.keys(input);
      const given = input as { value?: unknown; reference?: unknown };
      if (keys.length !== 1 || !(typeof given.value === 'string' || typeof given.reference === 'string'))
        throw invalid('/value', 'exactly one of value (a string) or reference (a string)');
      if (typeof given.value === 'string') {
        if (!this.cipher)
          throw new CustodianException(ErrorCode.ServiceUnavailable, 'No master key: secrets can only be given by reference');
        if (given.value.length === 0 || given.value.length > (d.maxLength ?? 8192))
          throw invalid('/value/value', `1 to ${d.maxLength ?? 8192} characters`);
        row = { kind: 'sealed', value: null, sealed: this.cipher.seal(orgId, name, given.value), reference: null };
        change = { name, change: 'set', writeOnly: true, source: 'encrypted' };
      } else {
        const parsed = parseReference(given.reference as string, this.references);
        if (typeof parsed === 'string') throw invalid('/value/reference', parsed);
        row = { kind: 'reference', value: null, sealed: null, reference: given.reference as string };
        change = { name, change: 'set', writeOnly: true, source: parsed.kind };
      }
    } else {
      const value = this.check(d, input);
      row = { kind: 'value', value, sealed: null, reference: null };
      change = { name, change: 'set', writeOnly: false, from: before?.value ?? null, to: value };
    }
    await m.query(
      `INSERT INTO "${SETTINGS_TABLE}" (org_id, name, kind, value, sealed, reference, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (org_id, name) DO UPDATE SET kind = EXCLUDED.kind, value = EXCLUDED.value, sealed = EXCLUDED.sealed,
         reference = EXCLUDED.reference, updated_by = EXCLUDED.updated_by, updated_at = now(), version = "${SETTINGS_TABLE}".version + 1`,
      [orgId, name, row.kind, row.value === null ? null : JSON.stringify(row.value), row.sealed, row.reference, actorUserId ?? null],
    );
    return change;
  }

  /** Removes a setting (back to its default); undefined when it was not set. */
  async clear(m: EntityManager, orgId: string, name: string): Promise<SettingChange | undefined> {
    const d = this.definition(name);
    if (!d) throw CustodianException.notFound('Unknown setting');
    const removed: Array<Pick<Row, 'value'>> = await m.query(
      `DELETE FROM "${SETTINGS_TABLE}" WHERE org_id = $1 AND name = $2 RETURNING value`,
      [orgId, name],
    );
    const first = Array.isArray(removed[0]) ? (removed[0] as Array<Pick<Row, 'value'>>)[0] : removed[0];
    if (!first) return undefined;
    return d.type === 'secret'
      ? { name, change: 'cleared', writeOnly: true }
      : { name, change: 'cleared', writeOnly: false, from: first.value ?? null, to: null };
  }

  /**
   * Every setting of an org with secrets opened or their references read: for the service's own use
   * only (a model provider's API key, say), never for an answer.
   */
  async resolve(db: DataSource | EntityManager, orgId: string): Promise<Map<string, string | number | boolean>> {
    return this.resolveRows(orgId, (await this.rows(db, orgId)).values());
  }

  /**
   * `resolve` over rows the caller read itself (SETTINGS_SELECT … WHERE org_id = $1, e.g. in one
   * query with other data it needs): every fixed setting (or its default) and every templated one set.
   * A reference that cannot be read now (a variable not set, a file missing or outside the allowed
   * directories) leaves its setting out of the answer and, when `unresolved` is given, its name in it,
   * so the caller can refuse to go on without it instead of acting as if it were never set.
   */
  async resolveRows(
    orgId: string,
    rowList: Iterable<SettingRow>,
    unresolved?: Set<string>,
  ): Promise<Map<string, string | number | boolean>> {
    const rows = new Map([...rowList].map((r) => [r.name, r]));
    const out = new Map<string, string | number | boolean>();
    for (const d of this.definitionsOf(rows)) {
      const row = rows.get(d.name);
      if (!row) {
        if (d.default !== undefined) out.set(d.name, d.default);
        continue;
      }
      if (row.kind === 'value') out.set(d.name, row.value as string | number | boolean);
      else if (row.kind === 'sealed' && this.cipher) out.set(d.name, this.cipher.open(orgId, d.name, row.sealed!));
      else if (row.kind === 'reference') {
        const ref = parseReference(row.reference!, this.references);
        const value = typeof ref === 'string' ? undefined : await resolveReference(ref, this.references);
        if (value !== undefined) out.set(d.name, value);
        else unresolved?.add(d.name);
      }
    }
    return out;
  }

  private check(d: SettingDefinition, input: unknown): string | number | boolean {
    switch (d.type) {
      case 'boolean':
        if (typeof input !== 'boolean') throw invalid('/value', 'true or false');
        return input;
      case 'integer':
        if (
          typeof input !== 'number' ||
          !Number.isInteger(input) ||
          (d.min !== undefined && input < d.min) ||
          (d.max !== undefined && input > d.max)
        )
          throw invalid('/value', `an integer from ${d.min ?? '-∞'} to ${d.max ?? '∞'}`);
        return input;
      case 'enum':
        if (typeof input !== 'string' || !d.enum?.includes(input)) throw invalid('/value', `one of ${(d.enum ?? []).join(', ')}`);
        return input;
      case 'url': {
        if (typeof input !== 'string' || input.length > 2048) throw invalid('/value', 'an http(s) URL');
        let url: URL;
        try {
          url = new URL(input);
        } catch {
          throw invalid('/value', 'an http(s) URL');
        }
        if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password)
          throw invalid('/value', 'an http(s) URL without credentials in it');
        return input.replace(/\/+$/, '');
      }
      default:
        if (typeof input !== 'string' || input.length > (d.maxLength ?? 4000) || input.includes('\u0000'))
          throw invalid('/value', `text of at most ${d.maxLength ?? 4000} characters`);
        return input;
    }
  }

  private async rows(db: DataSource | EntityManager, orgId: string, name?: string): Promise<Map<string, Row>> {
    const rows: Row[] = await db.query(
      `SELECT name, kind, value, sealed, reference, version, updated_at FROM "${SETTINGS_TABLE}" WHERE org_id = $1${name ? ' AND name = $2' : ''}${name ? ' FOR UPDATE' : ''}`,
      name ? [orgId, name] : [orgId],
    );
    return new Map(rows.map((r) => [r.name, r]));
  }
}

/** The service schemas that keep a settings table: the agent gateway's (model providers) and identity's (OIDC). */
export const SETTINGS_SCHEMAS = ['agent_gateway', 'identity'] as const;

/**
 * Re-seals every sealed setting from the previous master key to the current one, in one
 * transaction over every given schema's settings table (a schema without one is passed over), so a
 * failure leaves every value readable with the previous key. Rows already under the current key are
 * skipped, so a rerun is harmless. References are not touched (their secrets live elsewhere).
 * Without `schemas`, the table on the connection's search path.
 */
export async function rotateSettingsKey(
  ds: DataSource,
  previous: SettingsCipher,
  current: SettingsCipher,
  schemas?: readonly string[],
): Promise<{ resealed: number; skipped: number }> {
  return ds.transaction(async (m) => {
    const tables: string[] = [];
    if (!schemas) tables.push(`"${SETTINGS_TABLE}"`);
    else
      for (const schema of schemas) {
        if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`not a schema name: ${schema}`);
        const [{ found }]: Array<{ found: string | null }> = await m.query('SELECT to_regclass($1)::text AS found', [
          `"${schema}"."${SETTINGS_TABLE}"`,
        ]);
        if (found) tables.push(`"${schema}"."${SETTINGS_TABLE}"`);
      }
    let resealed = 0;
    let skipped = 0;
    for (const table of tables) {
      const rows: Array<{ org_id: string; name: string; sealed: string }> = await m.query(
        `SELECT org_id, name, sealed FROM ${table} WHERE kind = 'sealed' ORDER BY org_id, name FOR UPDATE`,
      );
      for (const row of rows) {
        if (SettingsCipher.keyIdOf(row.sealed) === current.keyId) {
          skipped++;
          continue;
        }
        const plain = previous.open(row.org_id, row.name, row.sealed);
        await m.query(`UPDATE ${table} SET sealed = $3 WHERE org_id = $1 AND name = $2`, [
          row.org_id,
          row.name,
          current.seal(row.org_id, row.name, plain),
        ]);
        resealed++;
      }
    }
    return { resealed, skipped };
  });
}
