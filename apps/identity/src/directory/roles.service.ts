import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import type { Static } from '@sinclair/typebox';
import type { EntityManager } from 'typeorm';
import { RoleEntity } from '../entities/role.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { conflict, conflictOnDuplicate, pageResult, type Page, type PageOf } from './directory.http';
import type { CreateRoleSchema, UpdateRoleSchema } from './directory.schemas';

/** The snapshot carries at most 256 ancestors; deeper trees are refused. */
export const MAX_ROLE_DEPTH = 255;

export interface RoleView {
  id: string;
  name: string;
  parentId: string | null;
  createdAt: string;
  updatedAt: string;
}

const view = (r: RoleEntity): RoleView => ({
  id: r.id,
  name: r.name,
  parentId: r.parentId,
  createdAt: r.createdAt.toISOString(),
  updatedAt: r.updatedAt.toISOString(),
});

/** The role tree of an org, kept with a closure table (role_closure) that SQL can join. */
@Injectable()
export class RolesService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  async list(orgId: string, page: Page): Promise<PageOf<RoleView>> {
    const rows = await this.events.read((m) =>
      m.find(RoleEntity, { where: { orgId }, order: { name: 'ASC', id: 'ASC' }, take: page.limit + 1, skip: page.offset }),
    );
    return pageResult(rows.map(view), page);
  }

  async get(orgId: string, id: string): Promise<RoleView> {
    return view(await this.events.read((m) => this.find(m, orgId, id)));
  }

  create(actor: PrincipalSnapshot, input: Static<typeof CreateRoleSchema>): Promise<RoleView> {
    return this.events.transaction((m) => this.createIn(m, actor, input));
  }

  /** Creates inside the caller's transaction (bundles apply many changes in one). */
  async createIn(m: EntityManager, actor: PrincipalSnapshot, input: Static<typeof CreateRoleSchema>): Promise<RoleView> {
    await this.lockTree(m, actor.orgId);
    const parentId = input.parentId ?? null;
    if (parentId) {
      await this.find(m, actor.orgId, parentId, 'Parent role');
      const depth = await this.depthOf(m, parentId);
      if (depth + 1 > MAX_ROLE_DEPTH) throw conflict(`The role tree may be at most ${MAX_ROLE_DEPTH} levels deep`);
    }
    const role = m.create(RoleEntity, { id: randomUUID(), orgId: actor.orgId, name: input.name, parentId });
    await conflictOnDuplicate(m.insert(RoleEntity, role), 'A role with this name exists');
    await m.query(
      `INSERT INTO role_closure (ancestor_id, descendant_id, org_id, depth)
       SELECT ancestor_id, $1::uuid, org_id, depth + 1 FROM role_closure WHERE descendant_id = $2::uuid
       UNION ALL SELECT $1::uuid, $1::uuid, $3::uuid, 0`,
      [role.id, parentId, actor.orgId],
    );
    const saved = await this.find(m, actor.orgId, role.id);
    const version = await this.events.policyChanged(m, actor.orgId, 'role.created', true);
    await this.events.directory(m, actor.orgId, version, { kind: 'role_upserted', roleId: role.id, parentId });
    await this.outbox.append(m, {
      orgId: actor.orgId,
      action: 'identity.role.created',
      outcome: 'success',
      target: { type: 'role', id: role.id },
      details: { after: view(saved), policyVersion: version },
    });
    return view(saved);
  }

  update(actor: PrincipalSnapshot, id: string, input: Static<typeof UpdateRoleSchema>): Promise<RoleView> {
    return this.events.transaction((m) => this.updateIn(m, actor, id, input));
  }

  /** Renames / moves inside the caller's transaction. */
  async updateIn(m: EntityManager, actor: PrincipalSnapshot, id: string, input: Static<typeof UpdateRoleSchema>): Promise<RoleView> {
    await this.lockTree(m, actor.orgId);
    const before = await this.find(m, actor.orgId, id);
    const parentChanges = input.parentId !== undefined && input.parentId !== before.parentId;
    if (parentChanges && input.parentId) {
      await this.find(m, actor.orgId, input.parentId, 'Parent role');
      const cycle: unknown[] = await m.query('SELECT 1 FROM role_closure WHERE ancestor_id = $1 AND descendant_id = $2', [
        id,
        input.parentId,
      ]);
      if (cycle.length > 0) throw conflict('A role cannot be moved under itself or one of its descendants');
      const [{ below }] = (await m.query('SELECT coalesce(max(depth), 0)::int AS below FROM role_closure WHERE ancestor_id = $1', [
        id,
      ])) as Array<{ below: number }>;
      if ((await this.depthOf(m, input.parentId)) + 1 + below > MAX_ROLE_DEPTH)
        throw conflict(`The role tree may be at most ${MAX_ROLE_DEPTH} levels deep`);
    }
    if (input.name !== undefined && input.name !== before.name) {
      await conflictOnDuplicate(m.update(RoleEntity, { id }, { name: input.name }), 'A role with this name exists');
    }
    if (parentChanges) {
      const parentId = input.parentId ?? null;
      await m.update(RoleEntity, { id }, { parentId });
      // Detach the subtree from its old ancestors, then attach it below the new parent.
      await m.query(
        `DELETE FROM role_closure
          WHERE descendant_id IN (SELECT descendant_id FROM role_closure WHERE ancestor_id = $1)
            AND ancestor_id NOT IN (SELECT descendant_id FROM role_closure WHERE ancestor_id = $1)`,
        [id],
      );
      if (parentId) {
        await m.query(
          `INSERT INTO role_closure (ancestor_id, descendant_id, org_id, depth)
           SELECT sup.ancestor_id, sub.descendant_id, $3, sup.depth + sub.depth + 1
             FROM role_closure sup CROSS JOIN role_closure sub
            WHERE sup.descendant_id = $2 AND sub.ancestor_id = $1`,
          [id, parentId, actor.orgId],
        );
      }
    }
    const after = await this.find(m, actor.orgId, id);
    const version = await this.events.policyChanged(m, actor.orgId, 'role.updated', parentChanges);
    if (parentChanges)
      await this.events.directory(m, actor.orgId, version, { kind: 'role_upserted', roleId: id, parentId: after.parentId });
    await this.outbox.append(m, {
      orgId: actor.orgId,
      action: 'identity.role.updated',
      outcome: 'success',
      target: { type: 'role', id },
      details: { before: view(before), after: view(after), policyVersion: version },
    });
    return view(after);
  }

  async remove(actor: PrincipalSnapshot, id: string): Promise<void> {
    await this.events.transaction(async (m) => {
      await this.lockTree(m, actor.orgId);
      const before = await this.find(m, actor.orgId, id);
      const [{ children, members }] = (await m.query(
        `SELECT (SELECT count(*)::int FROM role WHERE parent_id = $1) AS children,
                (SELECT count(*)::int FROM membership WHERE role_id = $1) AS members`,
        [id],
      )) as Array<{ children: number; members: number }>;
      if (children > 0 || members > 0) throw conflict('A role with child roles or members cannot be deleted');
      await m.query('DELETE FROM role_closure WHERE descendant_id = $1', [id]);
      await m.delete(RoleEntity, { id });
      const version = await this.events.policyChanged(m, actor.orgId, 'role.deleted', true);
      await this.events.directory(m, actor.orgId, version, { kind: 'role_deleted', roleId: id });
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.role.deleted',
        outcome: 'success',
        target: { type: 'role', id },
        details: { before: view(before), policyVersion: version },
      });
    });
  }

  /** A role of this org, else 404 (an id of another org is not found, R1). */
  async find(m: EntityManager, orgId: string, id: string, what = 'Role'): Promise<RoleEntity> {
    const role = await m.findOne(RoleEntity, { where: { id, orgId } });
    if (!role) throw CustodianException.notFound(`${what} not found`);
    return role;
  }

  /** Tree edits of one org are serialized (cycle and depth checks stay true until commit). */
  private async lockTree(m: EntityManager, orgId: string): Promise<void> {
    await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`custodian:role-tree:${orgId}`]);
  }

  private async depthOf(m: EntityManager, roleId: string): Promise<number> {
    const [{ d }] = (await m.query('SELECT coalesce(max(depth), 0)::int AS d FROM role_closure WHERE descendant_id = $1', [
      roleId,
    ])) as Array<{ d: number }>;
    return d;
  }
}
