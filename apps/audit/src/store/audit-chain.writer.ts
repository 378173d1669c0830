import type { AuditEvent } from '@custodian/contracts';
import { auditHashKey, pgInt8Array, pgJsonbArray, pgTextArray, pgUuidArray } from '@custodian/platform';
import type { DataSource, EntityManager } from 'typeorm';
import { GENESIS_HASH, chainIdOf, rowHash } from '../chain/chain-hash';
import { storedCanonicalJson, storedString } from './stored-form';

export interface AppendResult {
  inserted: number;
  duplicates: number;
}

/**
 * The one write path into the audit log. One transaction per batch, whatever orgs it spans: it
 * creates or locks the chain-head row of every chain (organization) in the batch, in chain-id
 * order, with one statement (so concurrent writers — other replicas — take the locks in the same
 * order; should two ever deadlock anyway, PostgreSQL aborts one and its events are retried),
 * skips event ids already stored (live or archived — a redelivery or a republish after the
 * dedupe window never makes a second row or a gap), links the new rows to their heads, inserts
 * them with one statement and moves the heads. Five round trips per batch instead of five per
 * org: the chains stay independent, only the write is shared.
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
    if (events.length === 0) return { inserted: 0, duplicates: 0 };
    return this.ds.transaction((m) => this.appendInTransaction(m, events));
  }

  private async appendInTransaction(m: EntityManager, events: readonly AuditEvent[]): Promise<AppendResult> {
    const byChain = new Map<string, AuditEvent[]>();
    for (const event of events) {
      const chainId = chainIdOf(event.orgId).toLowerCase();
      const list = byChain.get(chainId);
      if (list) list.push(event);
      else byChain.set(chainId, [event]);
    }
    const chainIds = [...byChain.keys()].sort();
    // Creates each head on first use and locks it (ON CONFLICT DO UPDATE takes the row lock), in
    // chain-id order (the ORDER BY feeds the insert in that order).
    const heads = (await m.query(
      `INSERT INTO audit_chain_head AS h (chain_id, seq, head_hash)
       SELECT t.chain_id, 0, $2 FROM unnest($1::uuid[]) WITH ORDINALITY AS t(chain_id, n) ORDER BY t.n
       ON CONFLICT (chain_id) DO UPDATE SET updated_at = now() RETURNING h.chain_id::text AS chain_id, h.seq::text AS seq, h.head_hash`,
      [chainIds, GENESIS_HASH],
    )) as Array<{ chain_id: string; seq: string; head_hash: string }>;
    const headOf = new Map(heads.map((h) => [h.chain_id.toLowerCase(), h]));
    // A new statement, so its snapshot includes whatever the previous lock holders committed.
    const ids = events.map((e) => e.id);
    const existing = (await m.query(
      `SELECT id FROM audit_event WHERE id = ANY($1::uuid[]) UNION ALL SELECT id FROM audit_event_archive WHERE id = ANY($1::uuid[])`,
      [pgUuidArray(ids)],
    )) as Array<{ id: string }>;
    const seen = new Set(existing.map((r) => r.id.toLowerCase()));
    const cols = {
      id: [] as string[],
      org: [] as Array<string | null>,
      chain: [] as string[],
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
    const moved = { chain: [] as string[], seq: [] as number[], hash: [] as string[] };
    let duplicates = 0;
    for (const chainId of chainIds) {
      const head = headOf.get(chainId);
      if (!head) throw new Error(`chain head ${chainId} was not locked`);
      let seq = Number(head.seq);
      let prev = head.head_hash;
      for (const event of byChain.get(chainId) ?? []) {
        const key = event.id.toLowerCase();
        if (seen.has(key)) {
          duplicates++;
          continue;
        }
        seen.add(key);
        const canonical = storedCanonicalJson(event, this.hashKey);
        seq++;
        const hash = rowHash(chainIdOf(event.orgId), seq, prev, canonical);
        cols.id.push(storedString(event.id));
        cols.org.push(storedString(event.orgId));
        cols.chain.push(chainId);
        cols.seq.push(seq);
        cols.prev.push(prev);
        cols.hash.push(hash);
        cols.occurred.push(storedString(event.occurredAt));
        cols.service.push(storedString(event.service));
        cols.action.push(storedString(event.action));
        cols.outcome.push(storedString(event.outcome));
        cols.actor.push(storedString(event.actor.userId));
        cols.ttype.push(storedString(event.target?.type));
        cols.tid.push(storedString(event.target?.id));
        cols.event.push(canonical);
        prev = hash;
      }
      if (seq !== Number(head.seq)) {
        moved.chain.push(chainId);
        moved.seq.push(seq);
        moved.hash.push(prev);
      }
    }
    if (cols.id.length === 0) return { inserted: 0, duplicates };
    await m.query(
      `WITH ins AS (INSERT INTO audit_event (id, org_id, chain_id, seq, prev_hash, row_hash, occurred_at, service, action, outcome,
                                actor_user_id, target_type, target_id, event)
       SELECT u.id, u.org_id, u.chain_id, u.seq, u.prev_hash, u.row_hash, u.occurred_at, u.service, u.action, u.outcome,
              u.actor_user_id, u.target_type, u.target_id, u.event
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::text[],
                     $10::text[], $11::uuid[], $12::text[], $13::text[], $14::jsonb[])
           AS u(id, org_id, chain_id, seq, prev_hash, row_hash, occurred_at, service, action, outcome, actor_user_id, target_type,
                target_id, event)
         RETURNING 1)
       UPDATE audit_chain_head h SET seq = n.seq, head_hash = n.head_hash, updated_at = now()
         FROM unnest($15::uuid[], $16::bigint[], $17::text[]) AS n(chain_id, seq, head_hash)
        WHERE h.chain_id = n.chain_id`,
      // Binary arrays (pg-binary-array): nothing escaped in Node, nothing unescaped in PostgreSQL.
      // The time stays text: PostgreSQL parses it as it always has.
      [
        pgUuidArray(cols.id),
        pgUuidArray(cols.org),
        pgUuidArray(cols.chain),
        pgInt8Array(cols.seq),
        pgTextArray(cols.prev),
        pgTextArray(cols.hash),
        cols.occurred,
        pgTextArray(cols.service),
        pgTextArray(cols.action),
        pgTextArray(cols.outcome),
        pgUuidArray(cols.actor),
        pgTextArray(cols.ttype),
        pgTextArray(cols.tid),
        pgJsonbArray(cols.event),
        pgUuidArray(moved.chain),
        pgInt8Array(moved.seq),
        pgTextArray(moved.hash),
      ],
    );
    return { inserted: cols.id.length, duplicates };
  }
}
