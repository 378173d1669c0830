import { itemsOf } from '../api/client';
import type { PermissionSetsReplaceBody, SharingRulesCreateBody } from '@custodian/client';
import { Button, Checkbox, Code, Group, Select, Stack, Table, Text, TextInput, Textarea, Title } from '@mantine/core';
import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { DataTable } from '../components/data-table';
import { Empty, ProblemAlert } from '../components/common';
import {
  CapabilityBadges,
  Done,
  ListState,
  PendingNotice,
  pendingOf,
  useList,
  useSubmit,
  type Item,
  type PendingAction,
} from '../components/forms';
import type { ObjectMeta } from '../lib/records';
import { useLoad } from '../lib/use-load';
import { useSession } from '../session';

const CRUD = [
  ['allowRead', 'Read'],
  ['allowCreate', 'Create'],
  ['allowEdit', 'Edit'],
  ['allowDelete', 'Delete'],
  ['viewAllRecords', 'View all'],
  ['modifyAllRecords', 'Modify all'],
] as const;

/** A permission set as `PUT /permission-sets/:id` takes it, with the matrix the page edits typed. */
type SetBody = Omit<PermissionSetsReplaceBody, 'objects' | 'fields'> & {
  objects?: Record<string, Record<string, boolean>>;
  fields?: Record<string, Record<string, string>>;
};

/** Every object the caller can describe: a metadata manager gets all of them. */
function useAllObjects(): ObjectMeta[] {
  const { api, objects } = useSession();
  const all = useLoad(async () => itemsOf<ObjectMeta>(await api.client.objectMetadataList()), [api]);
  return all.data ?? objects;
}

/**
 * Permission sets as an object × operation matrix with field levels, edited as a draft and saved
 * whole (`PUT`), or proposed for approval as a `permission.change` with its impact. A save that an
 * approval policy catches answers `202` with the pending action: shown with a link, nothing applied.
 */
export function PermissionSetsSection(): ReactNode {
  const { api } = useSession();
  const sets = useList('permissionSets');
  const objects = useAllObjects();
  const [selected, setSelected] = useState<string | null>(null);
  const [draft, setDraft] = useState<SetBody>();
  const [fieldsOf, setFieldsOf] = useState<string | null>(null);
  const [justification, setJustification] = useState('');
  const [newName, setNewName] = useState('');
  const [done, setDone] = useState<string>();
  const [pending, setPending] = useState<PendingAction>();
  const action = useSubmit();
  const current = sets.data?.find((s) => s.id === selected);

  useEffect(() => {
    setDraft(current ? (JSON.parse(JSON.stringify(current.body)) as SetBody) : undefined);
    setDone(undefined);
    setPending(undefined);
  }, [current]);

  const objectNames = [...new Set([...objects.map((o) => o.name), ...Object.keys(draft?.objects ?? {})])].sort();
  const toggle = (object: string, key: string, value: boolean): void =>
    setDraft((d) => d && { ...d, objects: { ...d.objects, [object]: { ...(d.objects?.[object] ?? {}), [key]: value } } });
  const setLevel = (object: string, field: string, level: string | null): void =>
    setDraft((d) => {
      if (!d) return d;
      const levels = { ...(d.fields?.[object] ?? {}) };
      if (level) levels[field] = level;
      else delete levels[field];
      return { ...d, fields: { ...d.fields, [object]: levels } };
    });

  const save = (): void => {
    setDone(undefined);
    setPending(undefined);
    void action.run(async () => {
      if (!selected || !draft) return;
      const res = await api.withStatus((c) => c.permissionSetsReplace({ id: selected, body: draft }));
      const p = pendingOf(res.status, res.body);
      if (p) setPending({ kind: 'permission.change', ...p });
      else setDone('Saved: the new permissions apply now.');
      sets.reload();
    });
  };
  const propose = (): void => {
    setDone(undefined);
    setPending(undefined);
    void action.run(async () => {
      if (!selected || !draft) return;
      const res = await api.client.pendingActionsFile({
        body: {
          kind: 'permission.change',
          justification,
          change: { type: 'permission_set.update', permissionSetId: selected, body: draft },
        },
      });
      setPending({ id: res.id, state: res.state, kind: 'permission.change' });
    });
  };
  const create = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    await action.run(async () => {
      const res = await api.client.permissionSetsCreate({ body: { name: newName } });
      setNewName('');
      sets.reload();
      setSelected(String(res.id));
    });
  };

  const fieldMeta = objects.find((o) => o.name === fieldsOf);
  return (
    <Stack>
      <ListState loaded={sets} what="Permission sets" />
      <Select
        label="Permission set"
        placeholder="Choose a set to see or edit"
        data={(sets.data ?? []).map((s) => ({ value: String(s.id), label: String(s.name) }))}
        value={selected}
        onChange={setSelected}
      />
      <form onSubmit={create} aria-label="Create permission set">
        <Group align="flex-end">
          <TextInput label="New permission set name" required value={newName} onChange={(e) => setNewName(e.currentTarget.value)} />
          <Button type="submit" variant="default">
            Create permission set
          </Button>
        </Group>
      </form>
      <ProblemAlert error={action.error} title="Not changed" />
      <Done>{done}</Done>
      <PendingNotice action={pending} what="The permission change" />
      {draft ? (
        <Stack gap="xs">
          <Title order={2} size="h4">
            {draft.name}
          </Title>
          <CapabilityBadges list={[...(draft.systemCapabilities ?? []), ...(draft.integrationCapabilities ?? [])]} />
          <Table withTableBorder aria-label={`${draft.name} object access`}>
            <Table.Thead>
              <Table.Tr>
                <Table.Th scope="col">Object</Table.Th>
                {CRUD.map(([, label]) => (
                  <Table.Th key={label} scope="col">
                    {label}
                  </Table.Th>
                ))}
                <Table.Th scope="col">Field levels</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {objectNames.map((o) => (
                <Table.Tr key={o}>
                  <Table.Th scope="row">{o}</Table.Th>
                  {CRUD.map(([k, label]) => (
                    <Table.Td key={k}>
                      <Checkbox
                        aria-label={`${o}: ${label}`}
                        checked={Boolean(draft.objects?.[o]?.[k])}
                        onChange={(e) => toggle(o, k, e.currentTarget.checked)}
                      />
                    </Table.Td>
                  ))}
                  <Table.Td>
                    <Text size="sm" span>
                      {Object.entries(draft.fields?.[o] ?? {})
                        .map(([f, a]) => `${f}: ${a}`)
                        .join(', ') || '—'}
                    </Text>{' '}
                    <Button size="compact-xs" variant="subtle" aria-label={`Edit field levels of ${o}`} onClick={() => setFieldsOf(o)}>
                      Edit
                    </Button>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          {fieldMeta ? (
            <Table withTableBorder aria-label={`Field levels of ${fieldMeta.name}`} maw={520}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th scope="col">Field of {fieldMeta.name}</Table.Th>
                  <Table.Th scope="col">Level</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {['*', ...fieldMeta.fields.map((f) => f.name)].map((f) => (
                  <Table.Tr key={f}>
                    <Table.Th scope="row">{f === '*' ? '* (every other field)' : f}</Table.Th>
                    <Table.Td>
                      <Select
                        aria-label={`Level of ${fieldMeta.name}.${f}`}
                        clearable
                        placeholder="default"
                        data={['none', 'read', 'edit']}
                        value={draft.fields?.[fieldMeta.name]?.[f] ?? null}
                        onChange={(v) => setLevel(fieldMeta.name, f, v)}
                      />
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          ) : null}
          <Group align="flex-end">
            <Button onClick={save} loading={action.busy}>
              Save permission set
            </Button>
            <TextInput
              label="Justification (for a proposal)"
              value={justification}
              onChange={(e) => setJustification(e.currentTarget.value)}
              miw={320}
            />
            <Button variant="default" onClick={propose} disabled={!justification.trim()}>
              Propose for approval
            </Button>
          </Group>
        </Stack>
      ) : null}
    </Stack>
  );
}

/** Sharing rules of every object the caller can see: add one (JSON), delete one. */
export function SharingSection(): ReactNode {
  const { api, objects } = useSession();
  const action = useSubmit();
  const [object, setObject] = useState<string | null>(objects[0]?.name ?? null);
  const [rule, setRule] = useState(
    JSON.stringify(
      {
        name: 'west_to_sales',
        type: 'criteria',
        criteria: { region: 'west' },
        sharedWith: { type: 'group', id: '…' },
        accessLevel: 'read',
      },
      null,
      2,
    ),
  );
  const [pending, setPending] = useState<PendingAction>();
  const [done, setDone] = useState<string>();
  const rules = useLoad(async (): Promise<Item[]> => {
    const all = await Promise.all(objects.map(async (o) => itemsOf<Item>(await api.client.sharingRulesList({ name: o.name }))));
    return all.flatMap((items, i) => items.map((r) => ({ ...r, object: objects[i].name })));
  }, [api, objects]);
  const create = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setPending(undefined);
    setDone(undefined);
    await action.run(async () => {
      let body: SharingRulesCreateBody;
      try {
        body = JSON.parse(rule) as SharingRulesCreateBody;
      } catch {
        throw new Error('The rule is not valid JSON.');
      }
      if (!object) throw new Error('Choose an object.');
      const res = await api.withStatus((c) => c.sharingRulesCreate({ name: object, body }));
      const p = pendingOf(res.status, res.body);
      if (p) setPending(p);
      else setDone('Sharing rule added.');
      rules.reload();
    });
  };
  return (
    <Stack>
      <ListState loaded={rules} what="Sharing rules" />
      <ProblemAlert error={action.error} title="Not changed" />
      <Done>{done}</Done>
      <PendingNotice action={pending} what="The sharing rule" />
      {rules.data && rules.data.length > 0 ? (
        <DataTable
          caption="Sharing rules"
          rows={rules.data}
          rowKey={(r) => `${String(r.object)}/${String(r.name)}`}
          columns={[
            { id: 'object', header: 'Object' },
            { id: 'name', header: 'Rule' },
            { id: 'type', header: 'Type' },
            { id: 'accessLevel', header: 'Access' },
            { id: 'criteria', header: 'Criteria' },
            { id: 'sharedWith', header: 'Shared with' },
            {
              id: 'delete',
              header: 'Delete',
              render: (r) => (
                <Button
                  size="compact-xs"
                  variant="subtle"
                  color="red"
                  aria-label={`Delete rule ${String(r.name)}`}
                  onClick={() =>
                    void action.run(async () => {
                      const res = await api.withStatus((c) => c.sharingRulesRemove({ name: String(r.object), rule: String(r.name) }));
                      setPending(pendingOf(res.status, res.body));
                      rules.reload();
                    })
                  }
                >
                  Delete
                </Button>
              ),
            },
          ]}
        />
      ) : null}
      {rules.data && rules.data.length === 0 ? <Empty>No sharing rules.</Empty> : null}
      <form onSubmit={create} aria-label="Add sharing rule">
        <Stack gap="xs" maw={640}>
          <Title order={2} size="h4">
            Add a sharing rule
          </Title>
          <Select label="Object" required data={objects.map((o) => o.name)} value={object} onChange={setObject} />
          <Textarea label="Rule (JSON)" autosize minRows={6} value={rule} onChange={(e) => setRule(e.currentTarget.value)} />
          <Text size="xs">
            <Code>criteria</Code> rules share records matching an ObjectQL <Code>where</Code>; <Code>owner</Code> rules share records owned
            by a group or role (docs/objects.md).
          </Text>
          <Group>
            <Button type="submit" loading={action.busy}>
              Add sharing rule
            </Button>
          </Group>
        </Stack>
      </form>
    </Stack>
  );
}
