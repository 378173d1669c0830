import { randomBytes } from 'node:crypto';
import { CredentialRevoked, DirectoryChanged, PolicyVersionChanged, type DirectoryChangedEvent } from '@custodian/contracts';
import { NatsBus } from '@custodian/platform';
import { Client } from 'pg';
import pino from 'pino';
import { pollUntil } from '../support/poll';
import { login, startTestHost, type TestHost } from '../support/host';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
type Json = any;

/** What another service keeps from the directory stream: user→role, group members, role parents. */
class DirectoryReplica {
  readonly userRole = new Map<string, string | null>();
  readonly groupMembers = new Set<string>();
  readonly roleParent = new Map<string, string | null>();
  lastSeq = 0;

  apply(e: DirectoryChangedEvent): void {
    if (e.seq <= this.lastSeq) return; // redelivery
    if (e.seq !== this.lastSeq + 1) throw new Error(`gap: expected ${this.lastSeq + 1}, got ${e.seq}`);
    const c = e.change;
    switch (c.kind) {
      case 'user_role':
        this.userRole.set(c.userId, c.roleId);
        break;
      case 'member_removed':
        this.userRole.delete(c.userId);
        break;
      case 'group_member_added':
        this.groupMembers.add(`${c.groupId}:${c.userId}`);
        break;
      case 'group_member_removed':
        this.groupMembers.delete(`${c.groupId}:${c.userId}`);
        break;
      case 'group_deleted':
        for (const key of [...this.groupMembers]) if (key.startsWith(`${c.groupId}:`)) this.groupMembers.delete(key);
        break;
      case 'role_upserted':
        this.roleParent.set(c.roleId, c.parentId);
        break;
      case 'role_deleted':
        this.roleParent.delete(c.roleId);
        break;
    }
    this.lastSeq = e.seq;
  }

  state(): unknown {
    return {
      userRole: [...this.userRole.entries()].filter(([, r]) => r !== null).sort(),
      groupMembers: [...this.groupMembers].sort(),
      roleParent: [...this.roleParent.entries()].sort(),
    };
  }
}

/**
 * Identity on NATS: directory changes go to JetStream in the change's transaction order; a replica
 * rebuilt by replaying the stream from the start equals the live one and identity's own tables;
 * revocations and policy versions are published too.
 */
describe('identity directory stream over JetStream', () => {
  const namespace = `ids${randomBytes(4).toString('hex')}`;
  const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
  let t: TestHost;
  let pg: Client;
  let reader: NatsBus;
  let admin: string;
  let orgId: string;

  const call = async (method: string, path: string, body?: unknown): Promise<Json> => {
    const res = await fetch(`${t.host.url}/api/v1${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), authorization: `Bearer ${admin}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };

  beforeAll(async () => {
    t = await startTestHost('idstream', { NATS_URL: natsUrl, CUSTODIAN_BUS_NAMESPACE: namespace });
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    reader = await NatsBus.connect({ url: natsUrl, namespace, name: 'replica-test' }, pino({ level: 'silent' }));
    const session = await login(t.host.url);
    admin = session.accessToken;
    orgId = session.orgId;
  });

  afterAll(async () => {
    await reader?.deleteStream();
    await reader?.drain();
    await pg?.end();
    await t?.stop();
  });

  it('replaying the stream from the start rebuilds the same replica as the live consumer and the database', async () => {
    const live = new DirectoryReplica();
    await reader.subscribe(DirectoryChanged, 'replica-live', async (e) => {
      if (e.orgId === orgId) live.apply(e);
    });
    const versions: number[] = [];
    await reader.subscribe(PolicyVersionChanged, 'replica-pv', async (e) => {
      if (e.orgId === orgId) versions.push(e.policyVersion);
    });
    const revoked: string[] = [];
    await reader.subscribe(CredentialRevoked, 'replica-rev', async (e) => {
      revoked.push(...e.ids);
    });

    const top = await call('POST', '/roles', { name: 'Top' });
    const mid = await call('POST', '/roles', { name: 'Mid', parentId: top.id });
    const side = await call('POST', '/roles', { name: 'Side' });
    const users = [];
    for (const name of ['u1', 'u2', 'u3'])
      users.push(
        await call('POST', '/users', {
          email: `${name}@stream.local`,
          displayName: name,
          password: 'a-long-enough-password',
          roleId: mid.id,
        }),
      );
    const g1 = await call('POST', '/groups', { name: 'G1' });
    const g2 = await call('POST', '/groups', { name: 'G2' });
    for (const u of users) await call('POST', `/groups/${g1.id}/members`, { userId: u.id });
    await call('POST', `/groups/${g2.id}/members`, { userId: users[0].id });
    await call('PATCH', `/roles/${mid.id}`, { parentId: side.id });
    await call('PATCH', `/users/${users[1].id}`, { roleId: top.id });
    await call('DELETE', `/groups/${g1.id}/members/${users[2].id}`);
    await call('DELETE', `/users/${users[2].id}`);
    await call('DELETE', `/groups/${g2.id}`);
    const temp = await call('POST', '/roles', { name: 'Temp' });
    await call('DELETE', `/roles/${temp.id}`);

    const finalSeq = Number(
      (await pg.query('SELECT directory_seq FROM identity.organization WHERE id = $1', [orgId])).rows[0].directory_seq,
    );
    await pollUntil(() => live.lastSeq === finalSeq, { what: `live replica at seq ${finalSeq}` });

    const replayed = new DirectoryReplica();
    await reader.subscribe(DirectoryChanged, 'replica-replay', async (e) => {
      if (e.orgId === orgId) replayed.apply(e);
    });
    await pollUntil(() => replayed.lastSeq === finalSeq, { what: 'replayed replica' });
    expect(replayed.state()).toEqual(live.state());

    const truth = {
      userRole: (await pg.query('SELECT user_id, role_id FROM identity.membership WHERE org_id = $1 AND role_id IS NOT NULL', [orgId])).rows
        .map((r) => [r.user_id, r.role_id])
        .sort(),
      groupMembers: (await pg.query('SELECT group_id, user_id FROM identity.group_member WHERE org_id = $1', [orgId])).rows
        .map((r) => `${r.group_id}:${r.user_id}`)
        .sort(),
      roleParent: (await pg.query('SELECT id, parent_id FROM identity.role WHERE org_id = $1', [orgId])).rows
        .map((r) => [r.id, r.parent_id])
        .sort(),
    };
    expect(live.state()).toEqual(truth);

    const version = Number(
      (await pg.query('SELECT policy_version FROM identity.organization WHERE id = $1', [orgId])).rows[0].policy_version,
    );
    await pollUntil(() => versions.includes(version), { what: 'latest policy version published' });
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);

    const session = await login(t.host.url);
    await fetch(`${t.host.url}/api/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${session.accessToken}` } });
    const sid = (await pg.query('SELECT id FROM identity.session WHERE revoked_at IS NOT NULL ORDER BY revoked_at DESC LIMIT 1')).rows[0]
      .id;
    await pollUntil(() => revoked.includes(sid), { what: 'session revocation event' });
    const unpublished = await pg.query('SELECT count(*)::int AS n FROM identity.identity_event WHERE published_at IS NULL');
    expect(unpublished.rows[0].n).toBe(0);
  });
});
