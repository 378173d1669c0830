import { Badge, Group, List, Stack, Table, Text, Title } from '@mantine/core';
import type { ReactNode } from 'react';
import { Empty } from '../components/common';
import { useSession } from '../session';

/** Who am I: the principal snapshot the API decides with. */
export function MePage(): ReactNode {
  const { me } = useSession();
  return (
    <Stack>
      <Title order={1} size="h3">
        Who am I
      </Title>
      <Table variant="vertical" withTableBorder>
        <Table.Tbody>
          <Table.Tr>
            <Table.Th scope="row">Email</Table.Th>
            <Table.Td data-testid="me-email">{me.email}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th scope="row">User id</Table.Th>
            <Table.Td>{me.userId}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th scope="row">Organization</Table.Th>
            <Table.Td>{me.orgId}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th scope="row">Role</Table.Th>
            <Table.Td>{me.roleId ?? 'none'}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th scope="row">Groups</Table.Th>
            <Table.Td>{me.groupIds?.length ? me.groupIds.join(', ') : 'none'}</Table.Td>
          </Table.Tr>
        </Table.Tbody>
      </Table>
      <Title order={2} size="h4">
        Capabilities
      </Title>
      {me.capabilities.length ? (
        <Group gap="xs" aria-label="Capabilities">
          {me.capabilities.map((c) => (
            <Badge key={c} variant="outline" color="dark">
              {c}
            </Badge>
          ))}
        </Group>
      ) : (
        <Empty>No administrative capabilities.</Empty>
      )}
      <Title order={2} size="h4">
        Permission sets
      </Title>
      {me.permissionSets?.length ? (
        <List>
          {me.permissionSets.map((s) => (
            <List.Item key={s.name}>
              <Text fw={600} span>
                {s.name}
              </Text>
              {': '}
              {Object.entries(s.objects ?? {})
                .map(
                  ([o, a]) =>
                    `${o} (${Object.keys(a)
                      .filter((k) => a[k])
                      .map((k) => k.replace(/^allow/, '').toLowerCase())
                      .join(', ')})`,
                )
                .join('; ') || 'no object access'}
            </List.Item>
          ))}
        </List>
      ) : (
        <Empty>No permission sets.</Empty>
      )}
    </Stack>
  );
}
