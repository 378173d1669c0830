import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { eventHash, GENESIS_HASH } from '../../apps/audit/src/chain/chain-hash';
import { CustodianApiError, CustodianClient } from '../../packages/client/src';
import { runCli, type Ran } from '../support/cli-process';
import { TEST_ADMIN, login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

const PASSWORD = 'a-long-enough-password-for-cli';

interface ExportLine {
  chainId: string;
  seq: number | string;
  prevHash: string | null;
  rowHash: string | null;
  archived: boolean;
  event: unknown;
}

/**
 * The built `custodian` command against one all-in-one (reused by every test): the directory
 * commands, the approvals decisions and the audit commands, each checked by its output and exit
 * code and by what changed on the server (docs/cli.md).
 */
describe('custodian CLI: directory, approvals and audit against a server', () => {
  let t: TestHost;
  let home: string;
  let pg: Client;
  let admin: CustodianClient;
  let orgId: string;

  const cli = (args: string[], input = ''): Promise<Ran> => runCli(args, { home, input });
  /** A command that must succeed: its stdout as JSON. */
  const ok = async <T = Record<string, unknown>>(args: string[], input = ''): Promise<T> => {
    const r = await cli(args, input);
    if (r.code !== 0) throw new Error(`custodian ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const status = (call: Promise<unknown>): Promise<number> =>
    call.then(
      () => 200,
      (e: unknown) => (e instanceof CustodianApiError ? e.status : Promise.reject(e)),
    );

  beforeAll(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'custodian-cli-ops-'));
    t = await startTestHost('cli_ops', { CUSTODIAN_DEMO: 'false' });
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    const session = await login(t.host.url);
    orgId = session.orgId;
    admin = new CustodianClient({ baseUrl: t.host.url, token: session.accessToken });
    const signedIn = await cli(['login', '--url', t.host.url, '--email', TEST_ADMIN.email], `${TEST_ADMIN.password}\n`);
    expect(signedIn.code).toBe(0);
  });

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('roles create / show / update / delete: the role tree on the server follows', async () => {
    const parent = await ok<{ id: string }>(['roles', 'create', '--name', 'ops_parent']);
    const child = await ok<{ id: string; parentId: string | null }>(['roles', 'create', '--name', 'ops_child', '--parent', parent.id]);
    expect(child.parentId).toBe(parent.id);
    expect(await admin.rolesGet({ id: child.id })).toMatchObject({ name: 'ops_child', parentId: parent.id });
    expect(await ok(['roles', 'show', child.id])).toMatchObject({ id: child.id, name: 'ops_child' });

    expect(await ok(['roles', 'update', child.id, '--name', 'ops_top', '--parent', 'none'])).toMatchObject({
      name: 'ops_top',
      parentId: null,
    });
    expect(await admin.rolesGet({ id: child.id })).toMatchObject({ name: 'ops_top', parentId: null });

    const deleted = await cli(['roles', 'delete', child.id]);
    expect({ code: deleted.code, stdout: deleted.stdout, stderr: deleted.stderr }).toEqual({
      code: 0,
      stdout: '',
      stderr: `deleted ${child.id}\n`,
    });
    expect(await status(admin.rolesGet({ id: child.id }))).toBe(404);
    const gone = await cli(['roles', 'show', child.id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^error: not_found \(HTTP 404\)/);
  });

  it('users create (password from stdin) / show / update: the new user signs in, and not once deactivated', async () => {
    const role = await ok<{ id: string }>(['roles', 'create', '--name', 'ops_users']);
    const email = 'ops.user@test.local';
    const created = await ok<{ id: string }>(['users', 'create', '--email', email, '--display-name', 'Ops User'], `${PASSWORD}\n`);
    await expect(login(t.host.url, { email, password: PASSWORD })).resolves.toMatchObject({ orgId });
    expect(await ok(['users', 'show', created.id])).toMatchObject({ id: created.id, email, displayName: 'Ops User', roleId: null });

    const updated = await ok(['users', 'update', created.id, '--display-name', 'Ops Renamed', '--role', role.id]);
    expect(updated).toMatchObject({ displayName: 'Ops Renamed', roleId: role.id, active: true });
    expect(await admin.usersGet({ id: created.id })).toMatchObject({ displayName: 'Ops Renamed', roleId: role.id });

    expect(await ok(['users', 'update', created.id, '--active', 'false', '--role', 'none'])).toMatchObject({ active: false, roleId: null });
    await expect(login(t.host.url, { email, password: PASSWORD })).rejects.toThrow(/login failed: 40[13]/);

    const noPassword = await cli(['users', 'create', '--email', 'nopass@test.local', '--display-name', 'x']);
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain('no password on stdin');
  });

  it('groups create / add-member / members / remove-member / delete, then users delete: membership on the server follows', async () => {
    const user = await ok<{ id: string }>(
      ['users', 'create', '--email', 'ops.member@test.local', '--display-name', 'Member'],
      `${PASSWORD}\n`,
    );
    const group = await ok<{ id: string }>(['groups', 'create', '--name', 'ops_group', '--description', 'made by the CLI']);
    expect(await admin.groupsGet({ id: group.id })).toMatchObject({ name: 'ops_group', description: 'made by the CLI' });
    expect(await ok(['groups', 'show', group.id])).toMatchObject({ id: group.id, name: 'ops_group' });

    expect(await ok(['groups', 'add-member', group.id, '--user', user.id])).toMatchObject({ groupId: group.id, userId: user.id });
    expect((await admin.groupsMembers({ id: group.id })).items.map((m) => m.userId)).toEqual([user.id]);
    const twice = await cli(['groups', 'add-member', group.id, '--user', user.id]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/\(HTTP 409\)/);
    const members = await ok<{ items: Array<{ userId: string }> }>(['groups', 'members', group.id]);
    expect(members.items.map((m) => m.userId)).toEqual([user.id]);

    const removed = await cli(['groups', 'remove-member', group.id, '--user', user.id]);
    expect({ code: removed.code, stderr: removed.stderr }).toEqual({ code: 0, stderr: `removed ${user.id} from group ${group.id}\n` });
    expect((await admin.groupsMembers({ id: group.id })).items).toEqual([]);

    expect((await cli(['groups', 'delete', group.id])).code).toBe(0);
    expect(await status(admin.groupsGet({ id: group.id }))).toBe(404);

    // users delete removes the user from the organization: the user is no longer found there.
    const userGone = await cli(['users', 'delete', user.id]);
    expect({ code: userGone.code, stderr: userGone.stderr }).toEqual({ code: 0, stderr: `removed ${user.id} from the organization\n` });
    expect(await status(admin.usersGet({ id: user.id }))).toBe(404);
    expect((await admin.usersList({ query: { limit: '200' } })).items.map((u) => u.id)).not.toContain(user.id);
  });

  it('permission-sets create --file / assign / assignments / unassign (by user, group and assignment id) / delete', async () => {
    const file = path.join(home, 'auditors.yaml');
    writeFileSync(file, 'name: Ops auditors\nsystemCapabilities: [view_audit]\n');
    const set = await ok<{ id: string; name: string }>(['permission-sets', 'create', '--file', file]);
    expect(await admin.permissionSetsGet({ id: set.id })).toMatchObject({
      name: 'Ops auditors',
      body: { systemCapabilities: ['view_audit'] },
    });
    expect(await ok(['permission-sets', 'show', set.id])).toMatchObject({ id: set.id, name: 'Ops auditors' });

    const email = 'ops.auditor@test.local';
    const user = await ok<{ id: string }>(['users', 'create', '--email', email, '--display-name', 'Auditor'], `${PASSWORD}\n`);
    const asUser = async (): Promise<CustodianClient> =>
      new CustodianClient({ baseUrl: t.host.url, token: (await login(t.host.url, { email, password: PASSWORD })).accessToken });
    expect(await status((await asUser()).auditVerify())).toBe(403);

    const assigned = await ok<{ id: string; userId: string }>(['permission-sets', 'assign', set.id, '--user', user.id]);
    expect(assigned.userId).toBe(user.id);
    // The assignment is what the server acts on: the user now holds view_audit.
    expect(await status((await asUser()).auditVerify())).toBe(200);
    const listed = await ok<{ items: Array<{ id: string }> }>(['permission-sets', 'assignments', set.id]);
    expect(listed.items.map((a) => a.id)).toEqual([assigned.id]);

    const unassigned = await cli(['permission-sets', 'unassign', set.id, '--user', user.id]);
    expect({ code: unassigned.code, stderr: unassigned.stderr }).toEqual({ code: 0, stderr: `removed assignment ${assigned.id}\n` });
    expect((await admin.permissionSetsAssignments({ id: set.id })).items).toEqual([]);
    expect(await status((await asUser()).auditVerify())).toBe(403);
    const notThere = await cli(['permission-sets', 'unassign', set.id, '--user', user.id]);
    expect(notThere.code).toBe(1);
    expect(notThere.stderr).toContain(`is not assigned to user ${user.id}`);

    const group = await admin.groupsCreate({ body: { name: 'ops_auditors' } });
    const byGroup = await ok<{ id: string; groupId: string }>(['permission-sets', 'assign', set.id, '--group', group.id]);
    expect(byGroup.groupId).toBe(group.id);
    expect((await cli(['permission-sets', 'unassign', set.id, '--assignment', byGroup.id])).code).toBe(0);
    expect((await admin.permissionSetsAssignments({ id: set.id })).items).toEqual([]);

    expect((await cli(['permission-sets', 'delete', set.id])).code).toBe(0);
    expect(await status(admin.permissionSetsGet({ id: set.id }))).toBe(404);
  });

  it('approvals approve <id> applies the pending action; reject <id> --reason rejects it with the reason', async () => {
    await admin.objectMetadataCreate({
      body: { name: 'deal', label: 'Deal', fields: [{ name: 'title', type: 'text' }] },
    } as never);
    const file = path.join(home, 'reps.json');
    writeFileSync(
      file,
      JSON.stringify({ name: 'Ops reps', objects: { deal: { allowRead: true, allowCreate: true } }, fields: { deal: { '*': 'edit' } } }),
    );
    const set = await ok<{ id: string }>(['permission-sets', 'create', '--file', file]);
    const email = 'ops.rep@test.local';
    const rep = await ok<{ id: string }>(['users', 'create', '--email', email, '--display-name', 'Rep'], `${PASSWORD}\n`);
    await ok(['permission-sets', 'assign', set.id, '--user', rep.id]);
    const repApi = new CustodianClient({
      baseUrl: t.host.url,
      token: (await login(t.host.url, { email, password: PASSWORD })).accessToken,
    });
    const file1 = await repApi.pendingActionsFile({
      body: { kind: 'record.create', object: 'deal', values: { title: 'Approved by CLI' }, justification: 'new deal' },
    } as never);
    const file2 = await repApi.pendingActionsFile({
      body: { kind: 'record.create', object: 'deal', values: { title: 'Rejected by CLI' }, justification: 'another deal' },
    } as never);

    const waiting = await ok<{ items: Array<{ id: string }> }>(['approvals', 'list', '--status', 'pending']);
    expect(waiting.items.map((a) => a.id).sort()).toEqual([file1.id, file2.id].sort());

    const approved = await ok<{ state: string; recordId: string }>(['approvals', 'approve', file1.id, '--comment', 'fine']);
    expect(approved.state).toBe('applied');
    const action = await admin.pendingActionsGet({ id: file1.id });
    expect(action.state).toBe('applied');
    // The record exists now, written as the requester.
    expect(await admin.recordsGet({ object: 'deal', id: approved.recordId })).toMatchObject({
      id: approved.recordId,
      title: 'Approved by CLI',
    });

    const noReason = await cli(['approvals', 'reject', file2.id]);
    expect(noReason.code).toBe(2);
    expect((await admin.pendingActionsGet({ id: file2.id })).state).toBe('pending');
    const rejected = await ok<{ state: string }>(['approvals', 'reject', file2.id, '--reason', 'duplicate of another deal']);
    expect(rejected.state).toBe('rejected');
    const after = await admin.pendingActionsGet({ id: file2.id });
    expect(after.state).toBe('rejected');
    expect(JSON.stringify(after)).toContain('duplicate of another deal');
    const again = await cli(['approvals', 'approve', file2.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/\(HTTP 409\)/);
  });

  /** The org's stored audit rows, live and archived. */
  const auditRows = async (): Promise<{ live: number; archived: number }> => {
    const { rows } = await pg.query<{ live: number; archived: number }>(
      `SELECT (SELECT count(*)::int FROM audit.audit_event WHERE chain_id = $1) AS live,
              (SELECT count(*)::int FROM audit.audit_event_archive WHERE chain_id = $1) AS archived`,
      [orgId],
    );
    return rows[0];
  };

  /** Every line links to the one before and its hash is the chain formula's (docs/audit.md). */
  const checkExport = (text: string): ExportLine[] => {
    const lines = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ExportLine);
    let prev = GENESIS_HASH;
    lines.forEach((line, i) => {
      expect(Number(line.seq)).toBe(i + 1);
      expect(line.chainId).toBe(orgId);
      expect(line.prevHash).toBe(prev);
      expect(line.rowHash).toBe(eventHash(orgId, Number(line.seq), prev, line.event));
      prev = line.rowHash as string;
    });
    return lines;
  };

  it('audit verify (online) and audit export: every exported line verifies, progress and view on stderr only', async () => {
    // Events of its own (the tests before add more): twelve groups, each audited.
    for (let i = 0; i < 12; i++) await admin.groupsCreate({ body: { name: `ops_audit_${i}` } });
    await pollUntil(async () => (await auditRows()).live >= 12, { what: 'audit events stored', timeoutMs: 30_000 });
    const stored = (await auditRows()).live;

    const verified = await cli(['audit', 'verify']);
    expect(verified.code).toBe(0);
    const verdict = JSON.parse(verified.stdout) as { ok: boolean; rows: number };
    expect(verdict.ok).toBe(true);
    expect(verdict.rows).toBeGreaterThanOrEqual(stored);

    const exported = await cli(['audit', 'export']);
    expect(exported.code).toBe(0);
    const lines = checkExport(exported.stdout);
    expect(lines.length).toBeGreaterThanOrEqual(stored);
    // Not a terminal: no carriage returns, one closing line with the count, then the view.
    expect(exported.stderr).toBe(
      `audit export: ${lines.length.toLocaleString('en-US')} lines, ${exported.stderr.match(/lines, ([\d,]+)\/s/)?.[1]}/s done\nview: full\n`,
    );

    const out = path.join(home, 'audit.ndjson');
    const toFile = await cli(['audit', 'export', '--output', out]);
    expect({ code: toFile.code, stdout: toFile.stdout }).toEqual({ code: 0, stdout: '' });
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(checkExport(readFileSync(out, 'utf8')).length).toBeGreaterThanOrEqual(lines.length);
  });

  it('audit archive --before moves the older rows; verify and export still see the whole chain', async () => {
    const { rows } = await pg.query<{ cut: Date; n: number }>(
      `SELECT occurred_at AS cut, (SELECT count(*)::int FROM audit.audit_event e WHERE e.chain_id = $1 AND e.occurred_at < x.occurred_at) AS n
         FROM audit.audit_event x WHERE chain_id = $1 ORDER BY seq OFFSET 10 LIMIT 1`,
      [orgId],
    );
    const { cut, n } = rows[0];
    expect(n).toBeGreaterThan(0);
    const before = await auditRows();
    expect(before.archived).toBe(0);

    const archived = await ok<{ archived: number }>(['audit', 'archive', '--before', cut.toISOString()]);
    expect(archived.archived).toBe(n);
    const after = await auditRows();
    expect(after.archived).toBe(n);
    expect(after.live).toBeGreaterThanOrEqual(before.live - n); // new events may have arrived meanwhile
    const { rows: older } = await pg.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit.audit_event WHERE chain_id = $1 AND occurred_at < $2`,
      [orgId, cut],
    );
    expect(older[0].n).toBe(0);
    expect((await ok<{ archived: number }>(['audit', 'archive', '--before', cut.toISOString()])).archived).toBe(0);

    expect(await ok(['audit', 'verify'])).toMatchObject({ ok: true });
    const lines = checkExport((await cli(['audit', 'export'])).stdout);
    expect(lines.filter((l) => l.archived)).toHaveLength(n);
    expect(lines.slice(0, n).every((l) => l.archived)).toBe(true);

    const bad = await cli(['audit', 'archive', '--before', 'yesterday']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/\(HTTP 400\)/);
  });

  it('audit verify exits 1 and names the first bad sequence when a stored row was changed', async () => {
    const { rows } = await pg.query<{ seq: string }>(
      `SELECT seq::text AS seq FROM audit.audit_event WHERE chain_id = $1 ORDER BY seq LIMIT 1`,
      [orgId],
    );
    const seq = Number(rows[0].seq);
    await pg.query(`ALTER TABLE audit.audit_event DISABLE TRIGGER ALL`);
    try {
      await pg.query(
        `UPDATE audit.audit_event SET event = jsonb_set(event, '{action}', '"auth.logout"') WHERE chain_id = $1 AND seq = $2`,
        [orgId, seq],
      );
    } finally {
      await pg.query(`ALTER TABLE audit.audit_event ENABLE TRIGGER ALL`);
    }
    const r = await cli(['audit', 'verify']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, firstBadSeq: seq, problem: 'hash_mismatch' });
  });
});
