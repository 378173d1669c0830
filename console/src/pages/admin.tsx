import { itemsOf } from '../api/client';
import { Button, Group, List, PasswordInput, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useState, type FormEvent, type ReactNode } from 'react';
import { DataTable } from '../components/data-table';
import { Empty, Link, Loading, ProblemAlert } from '../components/common';
import { Done, ListState, PendingNotice, pendingOf, useList, useSubmit, type Item, type PendingAction } from '../components/forms';
import { useLoad } from '../lib/use-load';
import { can, useSession } from '../session';
import { ApiKeysSection, ModelSettingsSection, ProfilesSection } from './admin-agents';
import { PermissionSetsSection, SharingSection } from './admin-access';

const TITLES: Record<string, string> = {
  users: 'Users',
  roles: 'Roles',
  groups: 'Groups',
  'permission-sets': 'Permission sets',
  sharing: 'Sharing rules',
  'api-keys': 'API keys',
  'agent-profiles': 'Agent profiles',
  'model-settings': 'Model settings',
};

/**
 * Administration: the directory and access configuration, editable by holders of the capability
 * (the navigation hides what the caller cannot do; the API decides either way).
 */
export function AdminPage({ section }: { section: string }): ReactNode {
  const title = TITLES[section];
  if (!title) {
    return (
      <Stack>
        <Title order={1} size="h3">
          Administration
        </Title>
        <ProblemAlert title="No such page" error={new Error('There is no administration page here.')} />
      </Stack>
    );
  }
  return (
    <Stack>
      <Title order={1} size="h3">
        {title}
      </Title>
      <SectionBody section={section} />
    </Stack>
  );
}

function SectionBody({ section }: { section: string }): ReactNode {
  switch (section) {
    case 'users':
      return <UsersSection />;
    case 'roles':
      return <RolesSection />;
    case 'groups':
      return <GroupsSection />;
    case 'permission-sets':
      return <PermissionSetsSection />;
    case 'sharing':
      return <SharingSection />;
    case 'api-keys':
      return <ApiKeysSection />;
    case 'agent-profiles':
      return <ProfilesSection />;
    default:
      return <ModelSettingsSection />;
  }
}

function UsersSection(): ReactNode {
  const { api } = useSession();
  const users = useList('users');
  const roles = useList('roles');
  const create = useSubmit();
  const rowAction = useSubmit();
  const [form, setForm] = useState({ email: '', displayName: '', password: '', roleId: '' });
  const [done, setDone] = useState<string>();
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setDone(undefined);
    await create.run(async () => {
      const res = await api.withStatus((c) =>
        c.usersCreate({
          body: {
            email: form.email,
            displayName: form.displayName,
            password: form.password,
            ...(form.roleId ? { roleId: form.roleId } : {}),
          },
        }),
      );
      setDone(
        res.status === 202
          ? `${form.email} already has an account: an invitation to this organization was sent instead.`
          : `Created ${form.email}.`,
      );
      setForm({ email: '', displayName: '', password: '', roleId: '' });
      users.reload();
    });
  };
  const roleName = (id: unknown): string => String(roles.data?.find((r) => r.id === id)?.name ?? '—');
  return (
    <Stack>
      <form onSubmit={submit} aria-label="Create user">
        <Title order={2} size="h4" mb="xs">
          Create a user
        </Title>
        <Group align="flex-end" wrap="wrap">
          <TextInput
            label="Email"
            type="email"
            required
            value={form.email}
            onChange={(e) => setForm({ ...form, email: e.currentTarget.value })}
          />
          <TextInput
            label="Display name"
            required
            value={form.displayName}
            onChange={(e) => setForm({ ...form, displayName: e.currentTarget.value })}
          />
          <PasswordInput
            label="Initial password"
            required
            value={form.password}
            onChange={(e) => setForm({ ...form, password: e.currentTarget.value })}
          />
          <Select
            label="Role"
            clearable
            data={(roles.data ?? []).map((r) => ({ value: String(r.id), label: String(r.name) }))}
            value={form.roleId || null}
            onChange={(v) => setForm({ ...form, roleId: v ?? '' })}
          />
          <Button type="submit" loading={create.busy}>
            Create user
          </Button>
        </Group>
      </form>
      <ProblemAlert error={create.error} title="The user was not created" />
      <Done>{done}</Done>
      <ProblemAlert error={rowAction.error} title="Not changed" />
      <ListState loaded={users} what="Users" />
      {users.data && users.data.length > 0 ? (
        <DataTable
          caption="Users"
          rows={users.data}
          rowKey={(r) => String(r.id)}
          columns={[
            { id: 'email', header: 'Email', render: (r) => <Link to={`/admin/users/${String(r.id)}`}>{String(r.email)}</Link> },
            { id: 'displayName', header: 'Name' },
            { id: 'roleId', header: 'Role', render: (r) => roleName(r.roleId) },
            { id: 'active', header: 'Active', render: (r) => (r.active ? 'yes' : 'no') },
            { id: 'capabilities', header: 'Capabilities', render: (r) => ((r.capabilities as string[]) ?? []).join(', ') || '—' },
            {
              id: 'actions',
              header: 'Actions',
              render: (r) => (
                <Button
                  size="xs"
                  variant="default"
                  aria-label={`${r.active ? 'Deactivate' : 'Reactivate'} ${String(r.email)}`}
                  onClick={() =>
                    void rowAction.run(async () => {
                      await api.client.usersUpdate({ id: String(r.id), body: { active: !r.active } });
                      users.reload();
                    })
                  }
                >
                  {r.active ? 'Deactivate' : 'Reactivate'}
                </Button>
              ),
            },
          ]}
        />
      ) : null}
    </Stack>
  );
}

/** One user: role, groups and permission sets (directly assigned), each changed through its own route. */
export function UserAdminPage({ id }: { id: string }): ReactNode {
  const { api, me } = useSession();
  const user = useLoad(async (): Promise<Item> => api.client.usersGet({ id }), [api, id]);
  const roles = useList('roles');
  const groups = useList('groups');
  const sets = useList('permissionSets', [can(me, 'manage_permissions')]);
  const memberships = useLoad(async () => {
    const all = await Promise.all(
      (groups.data ?? []).map(async (g) => {
        const members = itemsOf<Item>(await api.client.groupsMembers({ id: String(g.id), query: { limit: '200' } }));
        return members.some((m) => m.userId === id) ? String(g.id) : undefined;
      }),
    );
    return all.filter((g): g is string => g !== undefined);
  }, [api, id, groups.data]);
  const assignments = useLoad(async () => {
    if (!can(me, 'manage_permissions')) return [];
    const all = await Promise.all(
      (sets.data ?? []).map(async (s) =>
        itemsOf<Item>(await api.client.permissionSetsAssignments({ id: String(s.id), query: { limit: '200' } })),
      ),
    );
    return all.flat().filter((a) => a.userId === id);
  }, [api, id, sets.data]);
  const action = useSubmit();
  const [roleId, setRoleId] = useState<string | null>(null);
  const [groupId, setGroupId] = useState<string | null>(null);
  const [setId, setSetId] = useState<string | null>(null);
  const [done, setDone] = useState<string>();
  const [pending, setPending] = useState<PendingAction>();
  const run = (what: string, fn: () => Promise<void>): void => {
    setDone(undefined);
    setPending(undefined);
    void action.run(async () => {
      await fn();
      setDone(what);
    });
  };

  if (user.loading && !user.data) return <Loading />;
  if (user.error) return <ProblemAlert error={user.error} title="This user cannot be shown" />;
  const u = user.data!;
  const setName = (sid: unknown): string => String(sets.data?.find((s) => s.id === sid)?.name ?? sid);
  return (
    <Stack>
      <Title order={1} size="h3">
        User: {String(u.email)}
      </Title>
      <Table withTableBorder variant="vertical" aria-label="User">
        <Table.Tbody>
          <Table.Tr>
            <Table.Th scope="row">Name</Table.Th>
            <Table.Td>{String(u.displayName)}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th scope="row">Active</Table.Th>
            <Table.Td>{u.active ? 'yes' : 'no'}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th scope="row">Role</Table.Th>
            <Table.Td data-testid="user-role">{String(roles.data?.find((r) => r.id === u.roleId)?.name ?? '—')}</Table.Td>
          </Table.Tr>
        </Table.Tbody>
      </Table>
      <ProblemAlert error={action.error} title="Not changed" />
      <Done>{done}</Done>
      <PendingNotice action={pending} what="The assignment" />

      <Title order={2} size="h4">
        Role
      </Title>
      <Group align="flex-end">
        <Select
          label="New role"
          clearable
          data={(roles.data ?? []).map((r) => ({ value: String(r.id), label: String(r.name) }))}
          value={roleId}
          onChange={setRoleId}
        />
        <Button
          variant="default"
          onClick={() =>
            run('Role changed.', async () => {
              await api.client.usersUpdate({ id, body: { roleId } });
              user.reload();
            })
          }
        >
          Set role
        </Button>
      </Group>

      <Title order={2} size="h4">
        Groups
      </Title>
      {memberships.loading ? <Loading /> : null}
      <List aria-label="Groups of this user">
        {(memberships.data ?? []).map((gid) => (
          <List.Item key={gid}>
            {String(groups.data?.find((g) => g.id === gid)?.name ?? gid)}{' '}
            <Button
              size="compact-xs"
              variant="subtle"
              color="red"
              onClick={() =>
                run('Removed from the group.', async () => {
                  await api.client.groupsRemoveMember({ id: gid, userId: id });
                  memberships.reload();
                })
              }
            >
              Remove
            </Button>
          </List.Item>
        ))}
      </List>
      {memberships.data && memberships.data.length === 0 ? <Empty>In no group.</Empty> : null}
      <Group align="flex-end">
        <Select
          label="Add to group"
          data={(groups.data ?? [])
            .filter((g) => !memberships.data?.includes(String(g.id)))
            .map((g) => ({ value: String(g.id), label: String(g.name) }))}
          value={groupId}
          onChange={setGroupId}
        />
        <Button
          variant="default"
          disabled={!groupId}
          onClick={() =>
            run('Added to the group.', async () => {
              if (!groupId) return;
              await api.client.groupsAddMember({ id: groupId, body: { userId: id } });
              setGroupId(null);
              memberships.reload();
            })
          }
        >
          Add
        </Button>
      </Group>

      {can(me, 'manage_permissions') ? (
        <>
          <Title order={2} size="h4">
            Permission sets (assigned directly)
          </Title>
          {assignments.loading ? <Loading /> : null}
          <List aria-label="Permission sets of this user">
            {(assignments.data ?? []).map((a) => (
              <List.Item key={String(a.id)}>
                {setName(a.permissionSetId)}{' '}
                <Button
                  size="compact-xs"
                  variant="subtle"
                  color="red"
                  onClick={() =>
                    run('Unassigned.', async () => {
                      const res = await api.withStatus((c) =>
                        c.permissionSetsUnassign({ id: String(a.permissionSetId), assignmentId: String(a.id) }),
                      );
                      setPending(pendingOf(res.status, res.body));
                      assignments.reload();
                    })
                  }
                >
                  Unassign
                </Button>
              </List.Item>
            ))}
          </List>
          {assignments.data && assignments.data.length === 0 ? <Empty>No permission set assigned directly.</Empty> : null}
          <Group align="flex-end">
            <Select
              label="Assign permission set"
              data={(sets.data ?? []).map((s) => ({ value: String(s.id), label: String(s.name) }))}
              value={setId}
              onChange={setSetId}
            />
            <Button
              variant="default"
              disabled={!setId}
              onClick={() =>
                run('Assigned.', async () => {
                  if (!setId) return;
                  const res = await api.withStatus((c) => c.permissionSetsAssign({ id: setId, body: { userId: id } }));
                  setPending(pendingOf(res.status, res.body));
                  setSetId(null);
                  assignments.reload();
                })
              }
            >
              Assign
            </Button>
          </Group>
        </>
      ) : null}
    </Stack>
  );
}

/** Roles as a tree ("everything below her role" is visible); create a role, move one under another. */
function RolesSection(): ReactNode {
  const { api } = useSession();
  const roles = useList('roles');
  const action = useSubmit();
  const [name, setName] = useState('');
  const [parentId, setParentId] = useState<string | null>(null);
  const [moveId, setMoveId] = useState<string | null>(null);
  const [moveTo, setMoveTo] = useState<string | null>(null);
  const [done, setDone] = useState<string>();
  const options = (roles.data ?? []).map((r) => ({ value: String(r.id), label: String(r.name) }));
  const children = new Map<string | null, Item[]>();
  for (const r of roles.data ?? []) {
    const parent = (r.parentId as string | null) ?? null;
    children.set(parent, [...(children.get(parent) ?? []), r]);
  }
  const render = (parent: string | null): ReactNode => {
    const list = children.get(parent);
    if (!list?.length) return null;
    return (
      <List withPadding={parent !== null} listStyleType="disc">
        {list.map((r) => (
          <List.Item key={String(r.id)}>
            <Text span fw={600}>
              {String(r.name)}
            </Text>
            {render(String(r.id))}
          </List.Item>
        ))}
      </List>
    );
  };
  const create = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setDone(undefined);
    await action.run(async () => {
      await api.client.rolesCreate({ body: { name, ...(parentId ? { parentId } : {}) } });
      setDone(`Role ${name} created.`);
      setName('');
      roles.reload();
    });
  };
  const move = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setDone(undefined);
    await action.run(async () => {
      if (!moveId) return;
      await api.client.rolesUpdate({ id: moveId, body: { parentId: moveTo } });
      setDone('Role moved.');
      roles.reload();
    });
  };
  return (
    <Stack>
      <ListState loaded={roles} what="Roles" />
      {roles.data?.length ? <nav aria-label="Role hierarchy">{render(null)}</nav> : null}
      <ProblemAlert error={action.error} title="Not changed" />
      <Done>{done}</Done>
      <form onSubmit={create} aria-label="Create role">
        <Group align="flex-end">
          <TextInput label="New role name" required value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <Select label="Parent role" clearable data={options} value={parentId} onChange={setParentId} />
          <Button type="submit" loading={action.busy}>
            Create role
          </Button>
        </Group>
      </form>
      <form onSubmit={move} aria-label="Move role">
        <Group align="flex-end">
          <Select label="Role to move" required data={options} value={moveId} onChange={setMoveId} />
          <Select
            label="New parent (empty: top)"
            clearable
            data={options.filter((o) => o.value !== moveId)}
            value={moveTo}
            onChange={setMoveTo}
          />
          <Button type="submit" variant="default" disabled={!moveId}>
            Move role
          </Button>
        </Group>
      </form>
    </Stack>
  );
}

/** Groups and their members. */
function GroupsSection(): ReactNode {
  const { api } = useSession();
  const groups = useList('groups');
  const users = useList('users');
  const action = useSubmit();
  const [name, setName] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const [userId, setUserId] = useState<string | null>(null);
  const members = useLoad(
    async () => (selected ? itemsOf<Item>(await api.client.groupsMembers({ id: selected, query: { limit: '200' } })) : []),
    [api, selected],
  );
  const create = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    await action.run(async () => {
      await api.client.groupsCreate({ body: { name } });
      setName('');
      groups.reload();
    });
  };
  return (
    <Stack>
      <ListState loaded={groups} what="Groups" />
      <ProblemAlert error={action.error} title="Not changed" />
      <Group>
        {(groups.data ?? []).map((g) => (
          <Button
            key={String(g.id)}
            variant={selected === g.id ? 'filled' : 'default'}
            aria-pressed={selected === g.id}
            onClick={() => setSelected(String(g.id))}
          >
            {String(g.name)}
          </Button>
        ))}
      </Group>
      {selected ? (
        <Stack gap="xs">
          <Title order={2} size="h4">
            Members of {String(groups.data?.find((g) => g.id === selected)?.name ?? '')}
          </Title>
          {members.loading ? <Loading /> : null}
          {members.data && members.data.length === 0 ? <Empty>No members.</Empty> : null}
          <List>
            {(members.data ?? []).map((m) => (
              <List.Item key={String(m.userId)}>
                {String(m.email)}{' '}
                <Button
                  size="compact-xs"
                  variant="subtle"
                  color="red"
                  aria-label={`Remove ${String(m.email)}`}
                  onClick={() =>
                    void action.run(async () => {
                      if (!selected) return;
                      await api.client.groupsRemoveMember({ id: selected, userId: String(m.userId) });
                      members.reload();
                    })
                  }
                >
                  Remove
                </Button>
              </List.Item>
            ))}
          </List>
          <Group align="flex-end">
            <Select
              label="Add member"
              searchable
              data={(users.data ?? []).map((u) => ({ value: String(u.id), label: String(u.email) }))}
              value={userId}
              onChange={setUserId}
            />
            <Button
              variant="default"
              disabled={!userId}
              onClick={() =>
                void action.run(async () => {
                  if (!selected || !userId) return;
                  await api.client.groupsAddMember({ id: selected, body: { userId } });
                  setUserId(null);
                  members.reload();
                })
              }
            >
              Add member
            </Button>
          </Group>
        </Stack>
      ) : null}
      <form onSubmit={create} aria-label="Create group">
        <Group align="flex-end">
          <TextInput label="New group name" required value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <Button type="submit" loading={action.busy}>
            Create group
          </Button>
        </Group>
      </form>
    </Stack>
  );
}
