import { Inject, Injectable } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { OutboxWriter } from '@custodian/platform';
import type { EntityManager } from 'typeorm';
import { conflictOnDuplicate } from '../directory/directory.http';
import { GroupsService } from '../directory/groups.service';
import { GroupEntity } from '../entities/group.entity';
import { GroupMemberEntity } from '../entities/group-member.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { ScimGroupEntity } from './scim.entities';
import {
  SCHEMA_GROUP,
  ScimError,
  invalidPath,
  invalidValue,
  listResponse,
  scimString,
  type EqFilter,
  type PatchOperation,
  type ScimPage,
} from './scim.http';

interface GroupRow {
  id: string;
  name: string;
  created_at: Date;
  updated_at: Date;
  external_id: string | null;
}

const GROUP_SELECT = `SELECT g.id, g.name, g.created_at, g.updated_at, sg.external_id
  FROM user_group g LEFT JOIN scim_group sg ON sg.org_id = g.org_id AND sg.group_id = g.id
  WHERE g.org_id = $1`;

const FILTER_SQL: Record<string, string> = { displayName: 'g.name = $2', externalId: 'sg.external_id = $2' };
export const GROUP_FILTER_ATTRIBUTES = Object.keys(FILTER_SQL);
const MAX_MEMBERS_SHOWN = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Desired group state after a request: its name, the IdP's id for it, and member changes. */
interface GroupChange {
  name: string;
  externalId: string | null;
  /** The whole member list (PUT, replace of members) or undefined to keep it. */
  members?: Set<string>;
  add: Set<string>;
  remove: Set<string>;
}

/**
 * SCIM Groups (RFC 7643 §4.2) are the org's identity groups: what the IdP pushes as members is
 * what permission sets and sharing granted to the group reach. Every change is one transaction
 * with the same policy-version bump, directory event and identity.group.* audit rows as the REST API.
 */
@Injectable()
export class ScimGroupsService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(GroupsService) private readonly groups: GroupsService,
  ) {}

  async list(
    actor: PrincipalSnapshot,
    filter: EqFilter | undefined,
    page: ScimPage,
    withMembers: boolean,
    location: string,
  ): Promise<Record<string, unknown>> {
    const where = filter ? ` AND ${FILTER_SQL[filter.attribute]}` : '';
    const params = filter ? [actor.orgId, filter.value] : [actor.orgId];
    return this.events.read(async (m) => {
      const [{ n }] = (await m.query(`SELECT count(*)::int AS n FROM (${GROUP_SELECT}${where}) t`, params)) as Array<{ n: number }>;
      const rows: GroupRow[] =
        page.count === 0
          ? []
          : await m.query(`${GROUP_SELECT}${where} ORDER BY g.name, g.id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`, [
              ...params,
              page.count,
              page.startIndex - 1,
            ]);
      const resources = [];
      for (const r of rows) resources.push(await this.view(m, actor.orgId, r, withMembers, location));
      return listResponse(resources, n, page);
    });
  }

  async get(actor: PrincipalSnapshot, id: string, withMembers: boolean, location: string): Promise<Record<string, unknown>> {
    return this.events.read(async (m) => this.view(m, actor.orgId, await this.row(m, actor.orgId, id), withMembers, location));
  }

  async create(actor: PrincipalSnapshot, body: unknown, location: string): Promise<Record<string, unknown>> {
    const resource = readResource(body);
    const id = await this.events.transaction(async (m) => {
      if (resource.externalId && (await m.findOne(ScimGroupEntity, { where: { orgId: actor.orgId, externalId: resource.externalId } }))) {
        throw new ScimError(409, 'uniqueness', 'A group with this externalId exists');
      }
      const group = await this.groups.createIn(m, actor, { name: resource.name });
      await this.writeExternalId(m, actor, group.id, undefined, resource.externalId);
      await this.changeMembers(m, actor, group.id, new Set(), resource.members ?? new Set(), new Set());
      return group.id;
    });
    return this.get(actor, id, true, location);
  }

  async replace(actor: PrincipalSnapshot, id: string, body: unknown, location: string): Promise<Record<string, unknown>> {
    const resource = readResource(body);
    await this.change(actor, id, (current) => ({
      name: resource.name,
      externalId: resource.externalId ?? current.externalId,
      members: resource.members ?? new Set(),
      add: new Set(),
      remove: new Set(),
    }));
    return this.get(actor, id, true, location);
  }

  async patch(
    actor: PrincipalSnapshot,
    id: string,
    ops: PatchOperation[],
    location: string,
    withMembers: boolean,
  ): Promise<Record<string, unknown>> {
    await this.change(actor, id, (current) => {
      const next: GroupChange = { name: current.name, externalId: current.externalId, add: new Set(), remove: new Set() };
      for (const op of ops) applyOperation(next, op);
      return next;
    });
    return this.get(actor, id, withMembers, location);
  }

  async remove(actor: PrincipalSnapshot, id: string): Promise<void> {
    if (!UUID.test(id)) throw new ScimError(404, undefined, 'Group not found');
    // The directory removes the group with its memberships and assignments; the SCIM row goes with it.
    await this.groups.remove(actor, id);
    await this.events.transaction((m) => m.delete(ScimGroupEntity, { orgId: actor.orgId, groupId: id }));
  }

  private async change(
    actor: PrincipalSnapshot,
    id: string,
    plan: (current: { name: string; externalId: string | null }) => GroupChange,
  ): Promise<void> {
    await this.events.transaction(async (m) => {
      const row = await this.row(m, actor.orgId, id);
      await m.findOne(GroupEntity, { where: { id, orgId: actor.orgId }, lock: { mode: 'pessimistic_write' } });
      const next = plan({ name: row.name, externalId: row.external_id });
      if (next.name !== row.name) await this.groups.updateIn(m, actor, id, { name: next.name });
      await this.writeExternalId(m, actor, id, row.external_id, next.externalId);
      const current = new Set(
        (
          (await m.query('SELECT user_id FROM group_member WHERE group_id = $1 AND org_id = $2', [id, actor.orgId])) as Array<{
            user_id: string;
          }>
        ).map((r) => r.user_id),
      );
      const add = new Set(next.members ? [...next.members].filter((u) => !current.has(u)) : [...next.add].filter((u) => !current.has(u)));
      const remove = new Set(
        next.members ? [...current].filter((u) => !next.members!.has(u)) : [...next.remove].filter((u) => current.has(u)),
      );
      await this.changeMembers(m, actor, id, current, add, remove);
    });
  }

  /** Members must be members of this org; the audit rows and events match GroupsService's. */
  private async changeMembers(
    m: EntityManager,
    actor: PrincipalSnapshot,
    groupId: string,
    _current: Set<string>,
    add: Set<string>,
    remove: Set<string>,
  ): Promise<void> {
    if (add.size === 0 && remove.size === 0) return;
    if (add.size > 0) {
      const known: Array<{ user_id: string }> = await m.query(
        'SELECT user_id FROM membership WHERE org_id = $1 AND user_id = ANY($2::uuid[])',
        [actor.orgId, [...add]],
      );
      if (known.length !== add.size) throw invalidValue('members must be users of this organization');
    }
    const version = await this.events.policyChanged(m, actor.orgId, add.size > 0 ? 'group.member_added' : 'group.member_removed', true);
    for (const userId of add) {
      await m.insert(GroupMemberEntity, { groupId, userId, orgId: actor.orgId });
      await this.events.directory(m, actor.orgId, version, { kind: 'group_member_added', groupId, userId });
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.group.member_added',
        outcome: 'success',
        target: { type: 'group', id: groupId },
        details: { after: { userId }, policyVersion: version, via: 'scim' },
      });
    }
    for (const userId of remove) {
      await m.delete(GroupMemberEntity, { groupId, userId, orgId: actor.orgId });
      await this.events.directory(m, actor.orgId, version, { kind: 'group_member_removed', groupId, userId });
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.group.member_removed',
        outcome: 'success',
        target: { type: 'group', id: groupId },
        details: { before: { userId }, policyVersion: version, via: 'scim' },
      });
    }
  }

  private async writeExternalId(
    m: EntityManager,
    actor: PrincipalSnapshot,
    groupId: string,
    before: string | null | undefined,
    after: string | null,
  ): Promise<void> {
    if ((before ?? null) === after && before !== undefined) return;
    if (before === undefined && after === null) return;
    await conflictOnDuplicate(
      m.upsert(ScimGroupEntity, { orgId: actor.orgId, groupId, externalId: after }, { conflictPaths: ['orgId', 'groupId'] }),
      'A group with this externalId exists',
    );
    await this.outbox.append(m, {
      orgId: actor.orgId,
      action: 'identity.scim.group.updated',
      outcome: 'success',
      target: { type: 'group', id: groupId },
      details: { before: { externalId: before ?? null }, after: { externalId: after } },
    });
  }

  private async row(m: EntityManager, orgId: string, id: string): Promise<GroupRow> {
    const rows: GroupRow[] = UUID.test(id) ? await m.query(`${GROUP_SELECT} AND g.id = $2`, [orgId, id]) : [];
    if (rows.length === 0) throw new ScimError(404, undefined, 'Group not found');
    return rows[0];
  }

  private async view(
    m: EntityManager,
    orgId: string,
    r: GroupRow,
    withMembers: boolean,
    location: string,
  ): Promise<Record<string, unknown>> {
    const members: Array<{ user_id: string; display_name: string }> = withMembers
      ? await m.query(
          `SELECT gm.user_id, u.display_name FROM group_member gm JOIN user_account u ON u.id = gm.user_id
            WHERE gm.group_id = $1 AND gm.org_id = $2 ORDER BY gm.created_at, gm.user_id LIMIT ${MAX_MEMBERS_SHOWN}`,
          [r.id, orgId],
        )
      : [];
    return {
      schemas: [SCHEMA_GROUP],
      id: r.id,
      ...(r.external_id ? { externalId: r.external_id } : {}),
      displayName: r.name,
      ...(withMembers
        ? { members: members.map((mm) => ({ value: mm.user_id, display: mm.display_name, $ref: `${location}/Users/${mm.user_id}` })) }
        : {}),
      meta: {
        resourceType: 'Group',
        created: r.created_at.toISOString(),
        lastModified: r.updated_at.toISOString(),
        location: `${location}/Groups/${r.id}`,
      },
    };
  }
}

function readResource(body: unknown): { name: string; externalId: string | null; members?: Set<string> } {
  const r = body as Record<string, unknown> | null;
  if (!r || typeof r !== 'object' || Array.isArray(r)) throw new ScimError(400, 'invalidSyntax', 'A Group resource must be an object');
  if (!Array.isArray(r.schemas) || !r.schemas.includes(SCHEMA_GROUP)) {
    throw new ScimError(400, 'invalidSyntax', `A Group resource needs schemas ["${SCHEMA_GROUP}"]`);
  }
  return {
    name: scimString(r.displayName, 'displayName', 200),
    externalId: r.externalId === undefined || r.externalId === null ? null : scimString(r.externalId, 'externalId', 255),
    ...(r.members !== undefined ? { members: memberIds(r.members) } : {}),
  };
}

function memberIds(value: unknown): Set<string> {
  if (!Array.isArray(value) || value.length > 1000) throw invalidValue('members must be a list of at most 1000 entries');
  return new Set(
    value.map((v: unknown) => {
      const id = (v as { value?: unknown } | null)?.value;
      if (typeof id !== 'string' || !UUID.test(id)) throw invalidValue('a member value must be the id of a User');
      return id;
    }),
  );
}

const MEMBER_FILTER_PATH = /^members\[\s*value\s+eq\s+"([^"]+)"\s*\]$/i;

/** Okta: replace {displayName} without path, add/remove members with a path; Entra ID: Add/Remove "members" with values. */
function applyOperation(next: GroupChange, op: PatchOperation): void {
  const path = op.path?.trim();
  if (path === undefined) {
    if (!op.value || typeof op.value !== 'object' || Array.isArray(op.value))
      throw invalidValue('an operation without path needs an object value');
    for (const [key, value] of Object.entries(op.value as Record<string, unknown>)) {
      if (key === 'id' || key === 'schemas' || key === 'meta') continue;
      applyOperation(next, { op: op.op, path: key, value });
    }
    return;
  }
  const lower = path.toLowerCase();
  if (lower === 'displayname') {
    if (op.op === 'remove') throw new ScimError(400, 'mutability', 'displayName cannot be removed');
    next.name = scimString(op.value, 'displayName', 200);
    return;
  }
  if (lower === 'externalid') {
    next.externalId = op.op === 'remove' || op.value === null ? null : scimString(op.value, 'externalId', 255);
    return;
  }
  if (lower === 'members') {
    if (op.op === 'replace') {
      next.members = memberIds(op.value);
      next.add.clear();
      next.remove.clear();
      return;
    }
    // A remove of "members" without values empties the group (RFC 7644 §3.5.2.2).
    const ids = op.op === 'remove' && op.value === undefined ? undefined : memberIds(op.value);
    if (op.op === 'remove' && ids === undefined) {
      next.members = new Set();
      return;
    }
    for (const id of ids!) mark(next, id, op.op === 'add');
    return;
  }
  const filtered = MEMBER_FILTER_PATH.exec(path);
  if (filtered && op.op === 'remove') {
    if (!UUID.test(filtered[1])) throw invalidValue('a member value must be the id of a User');
    mark(next, filtered[1], false);
    return;
  }
  throw invalidPath(`${path.slice(0, 100)} is not an attribute of a Group here`);
}

/** Adds and removes apply in order, also on top of an earlier replace of the whole list. */
function mark(next: GroupChange, id: string, add: boolean): void {
  if (next.members) {
    if (add) next.members.add(id);
    else next.members.delete(id);
    return;
  }
  if (add) {
    next.add.add(id);
    next.remove.delete(id);
  } else {
    next.remove.add(id);
    next.add.delete(id);
  }
}
