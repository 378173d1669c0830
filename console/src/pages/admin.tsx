import { Badge, List, Stack, Table, Text, Title } from '@mantine/core';
import type { ReactNode } from 'react';
import { DataTable } from '../components/data-table';
import { Empty, Loading, ProblemAlert } from '../components/common';
import { useLoad } from '../lib/use-load';
import { useSession } from '../session';

type Item = Record<string, unknown>;

const TITLES: Record<string, string> = {
  users: 'Users',
  roles: 'Roles',
  groups: 'Groups',
  'permission-sets': 'Permission sets',
  sharing: 'Sharing rules',
  'api-keys': 'API keys',
};

/** Administration pages: read views of the directory and access configuration (changes go through the API). */
export function AdminPage({ section }: { section: string }): ReactNode {
  const { api, objects } = useSession();
  const loaded = useLoad(async (): Promise<Item[]> => {
    if (section === 'sharing') {
      const all = await Promise.all(
        objects.map(async (o) => (await api.get<{ items?: Item[]; rules?: Item[] }>(`/meta/objects/${o.name}/sharing-rules`)).body),
      );
      return all.flatMap((b, i) => (b.items ?? b.rules ?? []).map((r) => ({ ...r, object: objects[i].name })));
    }
    if (!TITLES[section]) return [];
    return (await api.get<{ items: Item[] }>(`/${section}?limit=200`)).body.items;
  }, [api, section, objects]);
  const title = TITLES[section] ?? 'Administration';
  return (
    <Stack>
      <Title order={1} size="h3">
        {title}
      </Title>
      {loaded.loading ? <Loading /> : null}
      <ProblemAlert error={loaded.error} title={`${title} could not be loaded`} />
      {loaded.data && loaded.data.length === 0 ? <Empty>Nothing here yet.</Empty> : null}
      {loaded.data && loaded.data.length > 0 ? <SectionBody section={section} items={loaded.data} /> : null}
    </Stack>
  );
}

function SectionBody({ section, items }: { section: string; items: Item[] }): ReactNode {
  switch (section) {
    case 'users':
      return (
        <DataTable
          caption="Users"
          rows={items}
          rowKey={(r) => String(r.userId)}
          columns={[
            { id: 'email', header: 'Email' },
            { id: 'displayName', header: 'Name' },
            { id: 'active', header: 'Active', render: (r) => (r.active ? 'yes' : 'no') },
            { id: 'capabilities', header: 'Capabilities', render: (r) => ((r.capabilities as string[]) ?? []).join(', ') || '—' },
          ]}
        />
      );
    case 'roles':
      return <RoleTree roles={items} />;
    case 'permission-sets':
      return <PermissionMatrix sets={items} />;
    case 'sharing':
      return (
        <DataTable
          caption="Sharing rules"
          rows={items}
          columns={[
            { id: 'object', header: 'Object' },
            { id: 'name', header: 'Rule' },
            { id: 'type', header: 'Type' },
            { id: 'accessLevel', header: 'Access' },
            { id: 'criteria', header: 'Criteria' },
            { id: 'sharedWith', header: 'Shared with' },
          ]}
        />
      );
    case 'api-keys':
      return (
        <DataTable
          caption="API keys"
          rows={items}
          columns={[
            { id: 'name', header: 'Name' },
            { id: 'prefix', header: 'Prefix' },
            { id: 'scopes', header: 'Scopes' },
            { id: 'expiresAt', header: 'Expires' },
            { id: 'revokedAt', header: 'Revoked' },
          ]}
        />
      );
    default:
      return (
        <DataTable
          caption={TITLES[section] ?? section}
          rows={items}
          columns={[
            { id: 'name', header: 'Name' },
            { id: 'description', header: 'Description' },
            { id: 'createdAt', header: 'Created' },
          ]}
        />
      );
  }
}

/** Roles as a tree: each role under its parent, so "everything below her role" is visible. */
function RoleTree({ roles }: { roles: Item[] }): ReactNode {
  const children = new Map<string | null, Item[]>();
  for (const r of roles) {
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
  return <nav aria-label="Role hierarchy">{render(null)}</nav>;
}

const CRUD = [
  ['allowRead', 'Read'],
  ['allowCreate', 'Create'],
  ['allowEdit', 'Edit'],
  ['allowDelete', 'Delete'],
  ['viewAllRecords', 'View all'],
  ['modifyAllRecords', 'Modify all'],
] as const;

/** Permission sets as an object × operation matrix, with each set's field access beneath. */
function PermissionMatrix({ sets }: { sets: Item[] }): ReactNode {
  return (
    <Stack>
      {sets.map((s) => {
        const body = (s.body ?? {}) as {
          objects?: Record<string, Record<string, boolean>>;
          fields?: Record<string, Record<string, string>>;
          capabilities?: string[];
        };
        const objectNames = Object.keys(body.objects ?? {});
        return (
          <Stack key={String(s.id)} gap="xs">
            <Title order={2} size="h4">
              {String(s.name)}
            </Title>
            {body.capabilities?.length ? (
              <Text size="sm">
                Capabilities:{' '}
                {body.capabilities.map((c) => (
                  <Badge key={c} variant="outline" color="dark" mr={4}>
                    {c}
                  </Badge>
                ))}
              </Text>
            ) : null}
            {objectNames.length === 0 ? (
              <Empty>No object access.</Empty>
            ) : (
              <Table withTableBorder aria-label={`${String(s.name)} object access`}>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th scope="col">Object</Table.Th>
                    {CRUD.map(([, label]) => (
                      <Table.Th key={label} scope="col">
                        {label}
                      </Table.Th>
                    ))}
                    <Table.Th scope="col">Fields</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {objectNames.map((o) => (
                    <Table.Tr key={o}>
                      <Table.Th scope="row">{o}</Table.Th>
                      {CRUD.map(([k, label]) => (
                        <Table.Td key={k} aria-label={`${label}: ${body.objects![o][k] ? 'yes' : 'no'}`}>
                          {body.objects![o][k] ? '✓' : '·'}
                        </Table.Td>
                      ))}
                      <Table.Td>
                        {Object.entries(body.fields?.[o] ?? {})
                          .map(([f, a]) => `${f}: ${a}`)
                          .join(', ') || '—'}
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )}
          </Stack>
        );
      })}
    </Stack>
  );
}
