import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, FindDirectoryEntry, type PrincipalSnapshot } from '@custodian/contracts';
import { BUS, CustodianException, OutboxWriter, SERVICE_DATA_SOURCE, type Bus } from '@custodian/platform';
import type { Decision } from '@custodian/policy';
import type { DataSource } from 'typeorm';
import { lockForWrite } from '../records/record-rows';
import type { ShareBody } from './sharing.schemas';

export const MAX_SHARES_PER_RECORD = 500;

export interface ShareView {
  id: string;
  granteeType: string;
  granteeId: string;
  accessLevel: string;
  createdBy: string;
  createdAt: string;
}

/** What granting answers: the share, whether it is new, and the level it replaced (an explicit upsert). */
export interface ShareGrant extends ShareView {
  created: boolean;
  previousAccessLevel: string | null;
}

const LEVEL_RANK: Record<string, number> = { read: 1, edit: 2 };

/**
 * Explicit shares of one record. A grantee must be a member, group or role of the request's org;
 * identity decides that from its own tables (the directory replica here holds only users with a
 * role and groups with members, and may lag a change made a moment ago).
 */
@Injectable()
export class RecordSharesService {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(BUS) private readonly bus: Bus,
  ) {}

  list(principal: PrincipalSnapshot, decision: Decision, object: string, id: string): Promise<ShareView[]> {
    return this.ds.transaction(async (m) => {
      await lockForWrite(m, decision, principal.orgId, object, id, 'share');
      const rows: Array<Record<string, unknown>> = await m.query(
        `SELECT id, grantee_type, grantee_id, access_level, created_by, created_at FROM record_shares
          WHERE org_id = $1 AND object_name = $2 AND record_id = $3 ORDER BY created_at, id LIMIT ${MAX_SHARES_PER_RECORD}`,
        [principal.orgId, object, id],
      );
      return rows.map(shareView);
    });
  }

  /**
   * Grants a share, or changes the level of the grantee's existing one — an explicit upsert: the
   * answer says whether the share is new and which level it replaced. Lowering a level (edit → read)
   * needs `replace: true`, so a second grant never silently downgrades a share (409 otherwise).
   */
  grant(principal: PrincipalSnapshot, decision: Decision, object: string, id: string, input: ShareBody): Promise<ShareGrant> {
    const orgId = principal.orgId;
    return this.ds.transaction(async (m) => {
      await lockForWrite(m, decision, orgId, object, id, 'share');
      await this.assertGrantee(orgId, input);
      const [existing] = (await m.query(
        `SELECT access_level FROM record_shares
          WHERE org_id = $1 AND object_name = $2 AND record_id = $3 AND grantee_type = $4 AND grantee_id = $5 FOR UPDATE`,
        [orgId, object, id, input.granteeType, input.granteeId],
      )) as Array<{ access_level: string }>;
      const previous = existing?.access_level ?? null;
      if (previous && LEVEL_RANK[input.accessLevel] < LEVEL_RANK[previous] && input.replace !== true) {
        throw new CustodianException(
          ErrorCode.Conflict,
          `The grantee already has ${previous} access to this record; send "replace": true to lower it to ${input.accessLevel}`,
        );
      }
      const count: Array<{ n: number }> = await m.query(
        'SELECT count(*)::int AS n FROM record_shares WHERE org_id = $1 AND object_name = $2 AND record_id = $3',
        [orgId, object, id],
      );
      if (!previous && count[0].n >= MAX_SHARES_PER_RECORD) throw new CustodianException('conflict', 'Too many shares on this record');
      const rows: Array<Record<string, unknown>> = await m.query(
        `INSERT INTO record_shares (id, org_id, object_name, record_id, grantee_type, grantee_id, access_level, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (org_id, object_name, record_id, grantee_type, grantee_id) DO UPDATE SET access_level = EXCLUDED.access_level
         RETURNING id, grantee_type, grantee_id, access_level, created_by, created_at`,
        [randomUUID(), orgId, object, id, input.granteeType, input.granteeId, input.accessLevel, principal.userId],
      );
      await this.outbox.append(m, {
        orgId,
        action: 'objects.share.granted',
        outcome: 'success',
        target: { type: object, id },
        details: {
          sharedWith: { type: input.granteeType, id: input.granteeId },
          accessLevel: input.accessLevel,
          ...(previous ? { previousAccessLevel: previous } : {}),
        },
      });
      return { ...shareView(rows[0]), created: previous === null, previousAccessLevel: previous };
    });
  }

  async revoke(principal: PrincipalSnapshot, decision: Decision, object: string, id: string, shareId: string): Promise<void> {
    const orgId = principal.orgId;
    await this.ds.transaction(async (m) => {
      await lockForWrite(m, decision, orgId, object, id, 'share');
      const [rows] = (await m.query(
        'DELETE FROM record_shares WHERE org_id = $1 AND object_name = $2 AND record_id = $3 AND id = $4 RETURNING grantee_type, grantee_id',
        [orgId, object, id, shareId],
      )) as [Array<Record<string, string>>, number];
      if (rows.length === 0) throw CustodianException.notFound('Share not found');
      await this.outbox.append(m, {
        orgId,
        action: 'objects.share.revoked',
        outcome: 'success',
        target: { type: object, id },
        details: { sharedWith: { type: rows[0].grantee_type, id: rows[0].grantee_id } },
      });
    });
  }

  /** Unknown ids and ids of another org get the same 400, so the answer says nothing about other orgs. */
  private async assertGrantee(orgId: string, input: ShareBody): Promise<void> {
    const type = input.granteeType === 'role_and_subordinates' ? 'role' : input.granteeType;
    const { exists } = await this.bus.request(FindDirectoryEntry, { orgId, type, id: input.granteeId });
    if (!exists) {
      throw new CustodianException(ErrorCode.ValidationFailed, 'The grantee is not a member, group or role of this organization', {
        issues: [{ path: '/granteeId', message: 'not found in this organization' }],
      });
    }
  }
}

function shareView(r: Record<string, unknown>): ShareView {
  return {
    id: String(r.id),
    granteeType: String(r.grantee_type),
    granteeId: String(r.grantee_id),
    accessLevel: String(r.access_level),
    createdBy: String(r.created_by),
    createdAt: r.created_at instanceof Date ? r.created_at.toISOString() : String(r.created_at),
  };
}
