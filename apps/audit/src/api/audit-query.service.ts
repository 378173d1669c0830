import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { Static } from '@sinclair/typebox';
import { BUS, CustodianException, OutboxWriter, SERVICE_DATA_SOURCE, type Bus } from '@custodian/platform';
import { ErrorCode, GetAuditProof, type AuditProof, type PrincipalSnapshot, type RequestOf } from '@custodian/contracts';
import type { DataSource } from 'typeorm';
import type { ChainVerdict } from '../chain/chain-verifier';
import { CheckpointService } from '../checkpoints/checkpoint.service';
import { readChain } from '../verify/chain-reader';
import { DEFAULT_PAGE, MAX_PAGE, type ListEventsQuerySchema } from './audit-api.schemas';
import type { AuditViewFilter } from './audit-view-filter';
import { AuditVisibilityClient } from './audit-visibility.client';

export interface StoredEventView {
  seq: number;
  /** Null for a reader whose access hides anything: chained hashes commit to the hidden values. */
  prevHash: string | null;
  rowHash: string | null;
  archived: boolean;
  /** Present (true) when fields or records were removed from the event for this reader. */
  redacted?: true;
  event: Record<string, unknown>;
}

interface StoredRow {
  seq: string;
  prev_hash: string;
  row_hash: string;
  event: Record<string, unknown>;
  archived: boolean;
}

/** The row as this reader may see it, or undefined when it is about a record they cannot read. */
function viewOf(filter: AuditViewFilter, r: StoredRow): StoredEventView | undefined {
  const shown = filter.show(r.event);
  if (!shown) return undefined;
  const full = filter.unrestricted;
  return {
    seq: Number(r.seq),
    prevHash: full ? r.prev_hash : null,
    rowHash: full ? r.row_hash : null,
    archived: r.archived,
    ...(shown.redacted ? { redacted: true as const } : {}),
    event: shown.event,
  };
}

const COLUMNS =
  'id, org_id, chain_id, seq, prev_hash, row_hash, occurred_at, received_at, service, action, outcome, actor_user_id, target_type, target_id, event';

/**
 * Reads, verifies, exports and archives one organization's chain; the org always comes from the
 * principal (over HTTP) or from the asking service's request (GetAuditProof, over the bus).
 */
@Injectable()
export class AuditQueryService implements OnApplicationBootstrap {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(CheckpointService) private readonly checkpoints: CheckpointService,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(AuditVisibilityClient) private readonly visibility: AuditVisibilityClient,
    @Inject(BUS) private readonly bus: Bus,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.handle(GetAuditProof, (req) => this.proof(req));
  }

  /**
   * Where events a service wrote stand in the org's chain, for that service to hand out as evidence
   * (the agent runtime's conversation export): the stored ones among `ids` with their sequence
   * numbers, hashes and stored form, and the org's newest signed checkpoint. Only the org's events
   * whose `service` is the asking one; hashes only when `viewer` (if named) may see them (ADR 0012).
   */
  async proof(req: RequestOf<typeof GetAuditProof>): Promise<AuditProof> {
    const ids = [...new Set(req.ids)];
    const rows = (
      ids.length === 0
        ? []
        : await this.ds.query(
            `SELECT * FROM (SELECT seq::text AS seq, prev_hash, row_hash, event, false AS archived FROM audit_event
                             WHERE chain_id = $1 AND id = ANY($2::uuid[]) AND service = $3
                           UNION ALL
                           SELECT seq::text, prev_hash, row_hash, event, true FROM audit_event_archive
                             WHERE chain_id = $1 AND id = ANY($2::uuid[]) AND service = $3) x
              ORDER BY x.seq::bigint`,
            [req.orgId, ids, req.service],
          )
    ) as StoredRow[];
    const hashes = req.viewer ? (await this.visibility.filterForReader(req.viewer, [])).unrestricted : true;
    const checkpoint = (await this.checkpoints.latest(req.orgId)) ?? null;
    return {
      chainId: req.orgId,
      hashes,
      events: rows.map((r) => ({
        id: r.event.id as string,
        seq: Number(r.seq),
        prevHash: hashes ? r.prev_hash : null,
        rowHash: hashes ? r.row_hash : null,
        archived: r.archived,
        event: r.event,
      })),
      checkpoint,
      publicKeys: this.checkpoints.trustedKeys(),
    };
  }

  /**
   * Newest first, keyset-paged by sequence number (stable under concurrent appends), as the reader
   * may see it. Events the reader may not see are dropped from the page, so a page can be short (even
   * empty) while `nextCursor` still continues after the last row scanned.
   */
  async list(
    principal: PrincipalSnapshot,
    q: Static<typeof ListEventsQuerySchema>,
  ): Promise<{ items: StoredEventView[]; nextCursor: string | null }> {
    const orgId = principal.orgId;
    const limit = Math.min(MAX_PAGE, Number(q.limit ?? DEFAULT_PAGE));
    const where = ['chain_id = $1'];
    const params: unknown[] = [orgId];
    const add = (sql: string, value: unknown): void => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (q.actor) add('actor_user_id = ?', q.actor);
    if (q.action) add('action = ?', q.action);
    if (q.objectType) add('target_type = ?', q.objectType);
    if (q.recordId) add('target_id = ?', q.recordId);
    if (q.outcome) add('outcome = ?', q.outcome);
    if (q.from) add('occurred_at >= ?', q.from);
    if (q.to) add('occurred_at < ?', q.to);
    if (q.cursor) add('seq < ?', q.cursor);
    params.push(limit + 1);
    // Ordered by the bigint column (qualified): `ORDER BY seq` would sort the text alias, and "999" > "1000".
    const rows = (await this.ds.query(
      `SELECT e.seq::text AS seq, e.prev_hash, e.row_hash, e.event FROM audit_event e WHERE ${where.join(' AND ')} ORDER BY e.seq DESC LIMIT $${params.length}`,
      params,
    )) as Array<Omit<StoredRow, 'archived'>>;
    const page = rows.slice(0, limit).map((r) => ({ ...r, archived: false }));
    const filter = await this.visibility.filterFor(
      principal,
      page.map((r) => r.event),
    );
    return {
      items: page.map((r) => viewOf(filter, r)).filter((v): v is StoredEventView => v !== undefined),
      nextCursor: rows.length > limit ? page[page.length - 1].seq : null,
    };
  }

  /** Live or archived; another org's id, and an event the reader may not see, answer exactly like an unknown one. */
  async get(principal: PrincipalSnapshot, id: string): Promise<StoredEventView> {
    const orgId = principal.orgId;
    const rows = (await this.ds.query(
      `SELECT seq::text AS seq, prev_hash, row_hash, event, false AS archived FROM audit_event WHERE id = $1 AND chain_id = $2
       UNION ALL
       SELECT seq::text, prev_hash, row_hash, event, true FROM audit_event_archive WHERE id = $1 AND chain_id = $2`,
      [id, orgId],
    )) as StoredRow[];
    const view = rows[0] && viewOf(await this.visibility.filterFor(principal, [rows[0].event]), rows[0]);
    if (!view) throw new CustodianException(ErrorCode.NotFound, 'No such audit event');
    return view;
  }

  /**
   * Verifies the org's whole chain (archived + live rows), against the newest stored checkpoint
   * if its signature holds. A checkpoint that does not verify (forged, edited) is reported and
   * fails the verification.
   */
  async verify(
    orgId: string,
  ): Promise<ChainVerdict & { checkpoint: { seq: number; valid: boolean; reason?: string } | null; head: boolean }> {
    const latest = await this.checkpoints.latest(orgId);
    let checkpoint: { seq: number; valid: boolean; reason?: string } | null = null;
    let claim: { seq: number; headHash: string } | undefined;
    if (latest) {
      const check = this.checkpoints.check(latest);
      checkpoint = check.ok ? { seq: latest.seq, valid: true } : { seq: latest.seq, valid: false, reason: check.reason };
      if (check.ok) claim = { seq: check.statement.seq, headHash: check.statement.headHash };
    }
    // One snapshot for the rows and the head row, so an append in between is not mistaken for a cut tail.
    const { verdict, head } = await this.ds.transaction('REPEATABLE READ', async (m) => {
      const v = await readChain(m, orgId, { checkpoint: claim });
      // The head row is written in the same transaction as each append: rows missing at the end show here.
      const [h] = (await m.query(`SELECT seq::text AS seq, head_hash FROM audit_chain_head WHERE chain_id = $1`, [orgId])) as Array<{
        seq: string;
        head_hash: string;
      }>;
      return { verdict: v, head: h as { seq: string; head_hash: string } | undefined };
    });
    const headSeq = head ? Number(head.seq) : 0;
    let result: ChainVerdict = verdict;
    if (verdict.ok && (headSeq !== verdict.headSeq || (head && head.head_hash !== verdict.headHash))) {
      result = { ...verdict, ok: false, firstBadSeq: Math.min(headSeq, verdict.headSeq) + 1, problem: 'truncated' };
    }
    if (checkpoint && !checkpoint.valid) result = { ...result, ok: false, problem: result.problem ?? 'checkpoint_mismatch' };
    // A verification that passed leaves a checkpoint of the head it walked: what follows it is all
    // a superuser could still rewrite unnoticed, so every verify shrinks that window to now.
    if (result.ok && headSeq === verdict.headSeq)
      await this.checkpoints.signVerifiedHead(orgId, verdict.headSeq, verdict.headHash).catch(() => false);
    return { ...result, checkpoint, head: headSeq === verdict.headSeq };
  }

  /**
   * The org's chain in sequence order, archived rows included, one JSON object per line, as the
   * reader may see it. `full` says whether the reader's access hid nothing when the export started
   * (then every line carries its hashes and the export verifies offline). Asks the visibility
   * question before anything is sent, so an unreachable objects service is a clean 503.
   */
  async exportFor(principal: PrincipalSnapshot): Promise<{ full: boolean; lines: AsyncGenerator<string> }> {
    const first = await this.visibility.filterFor(principal, []);
    return { full: first.unrestricted, lines: this.exportLines(principal) };
  }

  private async *exportLines(principal: PrincipalSnapshot): AsyncGenerator<string> {
    const orgId = principal.orgId;
    let after = 0;
    for (;;) {
      const rows = (await this.ds.query(
        `SELECT * FROM (SELECT seq, prev_hash, row_hash, event, false AS archived FROM audit_event WHERE chain_id = $1 AND seq > $2
                         UNION ALL
                         SELECT seq, prev_hash, row_hash, event, true FROM audit_event_archive WHERE chain_id = $1 AND seq > $2) x
          ORDER BY seq LIMIT 1000`,
        [orgId, after],
      )) as StoredRow[];
      if (rows.length === 0) return;
      const filter = await this.visibility.filterFor(
        principal,
        rows.map((r) => r.event),
      );
      for (const r of rows) {
        const v = viewOf(filter, r);
        if (!v) continue;
        yield `${JSON.stringify({ chainId: orgId, seq: v.seq, prevHash: v.prevHash, rowHash: v.rowHash, archived: v.archived, ...(v.redacted ? { redacted: true } : {}), event: v.event })}\n`;
      }
      after = Number(rows[rows.length - 1].seq);
    }
  }

  /**
   * Moves the org's rows that occurred before `before` into audit_event_archive: a verbatim copy,
   * then the delete that the trigger allows only for copied rows. Rows move once; the chain keeps
   * verifying across both tables. The move itself is audited.
   */
  async archive(orgId: string, before: Date): Promise<{ archived: number }> {
    if (!(before.getTime() <= Date.now())) throw new CustodianException(ErrorCode.ValidationFailed, '"before" must not be in the future');
    return this.ds.transaction(async (m) => {
      // Only copied rows are deleted: a late event committed between the two statements stays live.
      await m.query(
        `INSERT INTO audit_event_archive (${COLUMNS}, archived_at)
         SELECT ${COLUMNS}, now() FROM audit_event WHERE chain_id = $1 AND occurred_at < $2 ORDER BY seq`,
        [orgId, before.toISOString()],
      );
      const deleted = (await m.query(
        `DELETE FROM audit_event e WHERE e.chain_id = $1 AND e.occurred_at < $2
           AND EXISTS (SELECT 1 FROM audit_event_archive a WHERE a.id = e.id)`,
        [orgId, before.toISOString()],
      )) as [unknown, number];
      const archived = deleted[1];
      await this.outbox.append(m, {
        orgId,
        action: 'audit.archived',
        outcome: 'success',
        target: { type: 'audit_log', id: orgId },
        details: { before: before.toISOString(), archived },
      });
      return { archived };
    });
  }
}
