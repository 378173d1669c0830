import type { AuditEvent } from '@custodian/contracts';
import { auditHashKey, redactSecrets } from '@custodian/platform';
import type { DataSource, EntityManager } from 'typeorm';
import { canonicalJson } from '../chain/canonical-json';
import { GENESIS_HASH, chainIdOf, rowHash } from '../chain/chain-hash';
import { encodeControlChars } from './encode-control-chars';

export interface AppendResult {
  inserted: number;
  duplicates: number;
}

/**
 * The one write path into the audit log. Per chain (organization) it locks the chain-head row
 * FOR UPDATE, skips event ids already stored (live or archived — a redelivery or a republish
 * after the dedupe window never makes a second row or a gap), links the new rows to the head and
 * moves the head, all in one transaction. Writers for different orgs never wait for each other.
 */
export class AuditChainWriter {
  private readonly hashKey: Buffer;

  /** `hashKey` hashes secret-looking values a producer failed to redact (A5, defence in depth). */
  constructor(
    private readonly ds: DataSource,
    hashKey?: Buffer,
  ) {
    this.hashKey = hashKey ?? auditHashKey();
  }

  async append(events: readonly AuditEvent[]): Promise<AppendResult> {
    const byChain = new Map<string, AuditEvent[]>();
    for (const event of events) {
      const chainId = chainIdOf(event.orgId);
      const list = byChain.get(chainId) ?? [];
      list.push(event);
      byChain.set(chainId, list);
    }
    // Chains are independent: their transactions run side by side (each still serialized on its head row).
    const results = await Promise.allSettled(
      [...byChain].map(([chainId, list]) => this.ds.transaction((m) => this.appendToChain(m, chainId, list))),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return results.reduce(
      (acc, r) => {
        const v = (r as PromiseFulfilledResult<AppendResult>).value;
        return { inserted: acc.inserted + v.inserted, duplicates: acc.duplicates + v.duplicates };
      },
      { inserted: 0, duplicates: 0 },
    );
  }

  private async appendToChain(m: EntityManager, chainId: string, events: AuditEvent[]): Promise<AppendResult> {
    // Creates the head on first use and locks it in one statement (ON CONFLICT DO UPDATE takes the row lock).
    const [head] = (await m.query(
      `INSERT INTO audit_chain_head AS h (chain_id, seq, head_hash) VALUES ($1, 0, $2)
       ON CONFLICT (chain_id) DO UPDATE SET updated_at = now() RETURNING h.seq::text AS seq, h.head_hash`,
      [chainId, GENESIS_HASH],
    )) as Array<{ seq: string; head_hash: string }>;
    // A new statement, so its snapshot includes whatever the previous lock holder committed.
    const ids = events.map((e) => e.id);
    const existing = (await m.query(
      `SELECT id FROM audit_event WHERE id = ANY($1::uuid[]) UNION ALL SELECT id FROM audit_event_archive WHERE id = ANY($1::uuid[])`,
      [ids],
    )) as Array<{ id: string }>;
    const seen = new Set(existing.map((r) => r.id));
    let seq = Number(head.seq);
    let prev = head.head_hash;
    const cols = {
      id: [] as string[],
      org: [] as Array<string | null>,
      seq: [] as number[],
      prev: [] as string[],
      hash: [] as string[],
      occurred: [] as string[],
      service: [] as string[],
      action: [] as string[],
      outcome: [] as string[],
      actor: [] as Array<string | null>,
      ttype: [] as Array<string | null>,
      tid: [] as Array<string | null>,
      event: [] as string[],
    };
    let duplicates = 0;
    for (const raw of events) {
      if (seen.has(raw.id)) {
        duplicates++;
        continue;
      }
      seen.add(raw.id);
      const event = encodeControlChars(redactSecrets(raw, this.hashKey));
      const canonical = canonicalJson(event);
      seq++;
      const hash = rowHash(chainId, seq, prev, canonical);
      cols.id.push(event.id);
      cols.org.push(event.orgId);
      cols.seq.push(seq);
      cols.prev.push(prev);
      cols.hash.push(hash);
      cols.occurred.push(event.occurredAt);
      cols.service.push(event.service);
      cols.action.push(event.action);
      cols.outcome.push(event.outcome);
      cols.actor.push(event.actor.userId ?? null);
      cols.ttype.push(event.target?.type ?? null);
      cols.tid.push(event.target?.id ?? null);
      cols.event.push(canonical);
      prev = hash;
    }
    if (cols.id.length === 0) return { inserted: 0, duplicates };
    await m.query(
      `WITH ins AS (INSERT INTO audit_event (id, org_id, chain_id, seq, prev_hash, row_hash, occurred_at, service, action, outcome,
                                actor_user_id, target_type, target_id, event)
       SELECT u.id, u.org_id, $14::uuid, u.seq, u.prev_hash, u.row_hash, u.occurred_at, u.service, u.action, u.outcome,
              u.actor_user_id, u.target_type, u.target_id, u.event
         FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[],
                     $9::text[], $10::uuid[], $11::text[], $12::text[], $13::jsonb[])
           AS u(id, org_id, seq, prev_hash, row_hash, occurred_at, service, action, outcome, actor_user_id, target_type, target_id, event)
         RETURNING 1)
       UPDATE audit_chain_head SET seq = $15, head_hash = $16, updated_at = now() WHERE chain_id = $14::uuid`,
      [
        cols.id,
        cols.org,
        cols.seq,
        cols.prev,
        cols.hash,
        cols.occurred,
        cols.service,
        cols.action,
        cols.outcome,
        cols.actor,
        cols.ttype,
        cols.tid,
        cols.event,
        chainId,
        seq,
        prev,
      ],
    );
    return { inserted: cols.id.length, duplicates };
  }
}
