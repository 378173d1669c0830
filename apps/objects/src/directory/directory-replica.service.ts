import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DirectoryChanged, ErrorCode, PolicyVersionChanged, type DirectoryChangedEvent, type PayloadOf } from '@custodian/contracts';
import { BUS, CustodianException, LOGGER, SERVICE_DATA_SOURCE, type Bus } from '@custodian/platform';
import type { Logger } from 'pino';
import type { DataSource, EntityManager } from 'typeorm';

export const DIRECTORY_DURABLE = 'objects-directory-replica';
export const POLICY_VERSION_DURABLE = 'objects-policy-version';

/**
 * Policy-version bumps whose change produces no directory event (identity's reasons), for events
 * without `directoryChange`: once such a version is announced, the replica is as fresh for it as
 * for the version before.
 */
const NON_DIRECTORY_REASONS = new Set([
  'permission_set.updated',
  'permission_set.deleted',
  'permission_set.assigned',
  'permission_set.unassigned',
  'user.activated',
  'user.deactivated',
  'member.updated',
]);

export interface ReplicaState {
  appliedSeq: number;
  directoryVersion: number;
  announcedVersion: number;
  directoryAnnouncedVersion: number;
}

function toState(r: Record<string, string | null> | undefined): ReplicaState {
  return {
    appliedSeq: Number(r?.applied_seq ?? 0),
    directoryVersion: Number(r?.directory_version ?? 0),
    announcedVersion: Number(r?.announced_version ?? 0),
    directoryAnnouncedVersion: Number(r?.directory_announced_version ?? 0),
  };
}

function behind(version: number): CustodianException {
  return new CustodianException(
    ErrorCode.ServiceUnavailable,
    'The directory replica is behind the policy version of this request; retry shortly',
    {
      policyVersion: version,
    },
  );
}

/**
 * The replica state of org $1 as one text scalar (`seq:dirVersion:announced:dirAnnounced`), usable
 * as a subquery inside another statement so that the state and the rows it governs come from one
 * snapshot; `parseReplicaState` reads it back (null = no state yet).
 */
export const REPLICA_STATE_SQL = `(SELECT applied_seq::text || ':' || directory_version::text || ':' || announced_version::text || ':' || directory_announced_version::text
    FROM directory_replica_state WHERE org_id = $1)`;

/** The last text parsed and its state (every list reads the same text until the replica moves). */
let lastParsed: { text: string | null | undefined; state: Readonly<ReplicaState> } | undefined;

export function parseReplicaState(text: string | null | undefined): Readonly<ReplicaState> {
  if (lastParsed && lastParsed.text === text) return lastParsed.state;
  const [appliedSeq, directoryVersion, announcedVersion, directoryAnnouncedVersion] = (text ?? '0:0:0:0').split(':').map(Number);
  const state = Object.freeze({ appliedSeq, directoryVersion, announcedVersion, directoryAnnouncedVersion });
  lastParsed = { text, state };
  return state;
}

/** Versions every new org starts with (identity creates an org at policy version 1). */
const INITIAL_VERSION = 1;

/**
 * The directory replica (R10; docs/objects.md, "Directory replica and freshness"): user→role, group
 * membership and the role closure of each org, rebuilt from identity's DirectoryChanged stream in `seq` order, plus how far it has got.
 * A request whose snapshot carries a newer policy version than the replica has applied waits
 * (polling) for the replica to catch up and is refused with 503 after `waitMs` — never decided on
 * older directory data.
 */
@Injectable()
export class DirectoryReplicaService implements OnApplicationBootstrap {
  waitMs = 1000;
  private readonly pollMs = 10;

  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.subscribe(DirectoryChanged, DIRECTORY_DURABLE, (event) => this.apply(event));
    await this.bus.subscribe(PolicyVersionChanged, POLICY_VERSION_DURABLE, (event) => this.announce(event));
  }

  /** Applies one directory event exactly once and in order; a gap is retried (redelivery). */
  async apply(event: DirectoryChangedEvent): Promise<void> {
    await this.ds.transaction(async (m) => {
      const state = await this.lockState(m, event.orgId);
      if (event.seq <= state.appliedSeq) return; // redelivery
      if (event.seq !== state.appliedSeq + 1) {
        this.logger.warn(
          { orgId: event.orgId, seq: event.seq, applied: state.appliedSeq },
          'directory event out of order; waiting for redelivery',
        );
        throw new Error(`directory gap for org ${event.orgId}: expected ${state.appliedSeq + 1}, got ${event.seq}`);
      }
      await this.applyChange(m, event);
      await m.query(
        'UPDATE directory_replica_state SET applied_seq = $2, directory_version = GREATEST(directory_version, $3) WHERE org_id = $1',
        [event.orgId, event.seq, event.policyVersion],
      );
    });
  }

  async announce(event: PayloadOf<typeof PolicyVersionChanged>): Promise<void> {
    // Identity says exactly whether this version also has a directory event; the reason list only
    // covers events written before it did.
    const hasDirectory = event.directoryChange ?? !NON_DIRECTORY_REASONS.has(event.reason);
    const directory = hasDirectory ? event.policyVersion : 0;
    await this.ds.query(
      `INSERT INTO directory_replica_state (org_id, applied_seq, directory_version, announced_version, directory_announced_version)
       VALUES ($1, 0, 0, $2, $3)
       ON CONFLICT (org_id) DO UPDATE SET announced_version = GREATEST(directory_replica_state.announced_version, EXCLUDED.announced_version),
         directory_announced_version = GREATEST(directory_replica_state.directory_announced_version, EXCLUDED.directory_announced_version)`,
      [event.orgId, event.policyVersion, directory],
    );
  }

  async state(orgId: string, m: EntityManager = this.ds.manager): Promise<ReplicaState> {
    return (await this.stateWith(orgId, undefined, m)).state;
  }

  /**
   * The replica state plus one extra scalar (`extraSql`, over the org id as $1) in the same round
   * trip — the request path reads the metadata stamp with it.
   */
  async stateWith(
    orgId: string,
    extraSql: string | undefined,
    m: EntityManager = this.ds.manager,
  ): Promise<{ state: ReplicaState; extra?: string }> {
    const rows: Array<Record<string, string>> = await m.query(
      `SELECT s.applied_seq, s.directory_version, s.announced_version, s.directory_announced_version${extraSql ? `, ${extraSql} AS extra` : ''}
         FROM (SELECT $1::uuid AS org_id) o LEFT JOIN directory_replica_state s ON s.org_id = o.org_id`,
      [orgId],
    );
    const r = rows[0];
    return { state: toState(r), ...(extraSql ? { extra: r?.extra ?? '' } : {}) };
  }

  /** Waits until fresh (see ensureFresh); answers the extra scalar read with the last check. */
  async freshWith(orgId: string, version: number, extraSql: string): Promise<string> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const { state, extra } = await this.stateWith(orgId, extraSql);
      if (DirectoryReplicaService.isFresh(state, version)) return extra ?? '';
      if (Date.now() >= deadline) throw behind(version);
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
    }
  }

  /**
   * Fresh for `version` when the last applied directory event is at least that new, or when every
   * version up to it has been announced and each announced directory change has been applied.
   */
  static isFresh(state: Readonly<ReplicaState>, version: number): boolean {
    if (version <= INITIAL_VERSION) return true;
    if (state.directoryVersion >= version) return true;
    return state.announcedVersion >= version && state.directoryAnnouncedVersion <= state.directoryVersion;
  }

  /** Waits (polling) until the replica is fresh for `version`; 503 when it does not get there in time. */
  async ensureFresh(orgId: string, version: number): Promise<void> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      if (DirectoryReplicaService.isFresh(await this.state(orgId), version)) return;
      if (Date.now() >= deadline) throw behind(version);
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
    }
  }

  private async lockState(m: EntityManager, orgId: string): Promise<ReplicaState> {
    await m.query('INSERT INTO directory_replica_state (org_id) VALUES ($1) ON CONFLICT DO NOTHING', [orgId]);
    await m.query('SELECT 1 FROM directory_replica_state WHERE org_id = $1 FOR UPDATE', [orgId]);
    return this.state(orgId, m);
  }

  private async applyChange(m: EntityManager, event: DirectoryChangedEvent): Promise<void> {
    const org = event.orgId;
    const c = event.change;
    switch (c.kind) {
      case 'user_role':
        if (c.roleId === null) await m.query('DELETE FROM user_roles WHERE org_id = $1 AND user_id = $2', [org, c.userId]);
        else
          await m.query(
            'INSERT INTO user_roles (org_id, user_id, role_id) VALUES ($1, $2, $3) ON CONFLICT (org_id, user_id) DO UPDATE SET role_id = EXCLUDED.role_id',
            [org, c.userId, c.roleId],
          );
        return;
      case 'member_removed':
        await m.query('DELETE FROM user_roles WHERE org_id = $1 AND user_id = $2', [org, c.userId]);
        await m.query('DELETE FROM group_members WHERE org_id = $1 AND user_id = $2', [org, c.userId]);
        return;
      case 'group_member_added':
        await m.query('INSERT INTO group_members (org_id, group_id, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
          org,
          c.groupId,
          c.userId,
        ]);
        return;
      case 'group_member_removed':
        await m.query('DELETE FROM group_members WHERE org_id = $1 AND group_id = $2 AND user_id = $3', [org, c.groupId, c.userId]);
        return;
      case 'group_deleted':
        await m.query('DELETE FROM group_members WHERE org_id = $1 AND group_id = $2', [org, c.groupId]);
        return;
      case 'role_upserted':
        await m.query(
          'INSERT INTO role_parent (org_id, role_id, parent_id) VALUES ($1, $2, $3) ON CONFLICT (org_id, role_id) DO UPDATE SET parent_id = EXCLUDED.parent_id',
          [org, c.roleId, c.parentId],
        );
        await this.rebuildClosure(m, org);
        return;
      case 'role_deleted':
        await m.query('DELETE FROM role_parent WHERE org_id = $1 AND role_id = $2', [org, c.roleId]);
        await m.query('DELETE FROM user_roles WHERE org_id = $1 AND role_id = $2', [org, c.roleId]);
        await this.rebuildClosure(m, org);
        return;
    }
  }

  /** Role trees are small (identity bounds depth at 255); the closure is recomputed per change. */
  private async rebuildClosure(m: EntityManager, org: string): Promise<void> {
    await m.query('DELETE FROM role_closure WHERE org_id = $1', [org]);
    await m.query(
      `WITH RECURSIVE c(ancestor_id, descendant_id, depth) AS (
         SELECT role_id, role_id, 0 FROM role_parent WHERE org_id = $1
         UNION ALL
         SELECT p.parent_id, c.descendant_id, c.depth + 1
           FROM c JOIN role_parent p ON p.org_id = $1 AND p.role_id = c.ancestor_id
          WHERE p.parent_id IS NOT NULL AND c.depth < 256)
       INSERT INTO role_closure (org_id, ancestor_id, descendant_id, depth)
       SELECT $1, ancestor_id, descendant_id, min(depth) FROM c GROUP BY ancestor_id, descendant_id`,
      [org],
    );
  }
}
