import type { RecordsQueryResponse } from '@custodian/client';
import { Alert, Button, Code, Group, NumberInput, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { itemsOf } from '../api/client';
import { ApiError } from '../api/problem';
import { DataTable } from '../components/data-table';
import { Empty, Link, Loading, ProblemAlert } from '../components/common';
import { formatValue } from '../lib/diff';
import {
  buildQuery,
  changedValues,
  isEditable,
  readableColumns,
  type FieldMeta,
  type FilterState,
  type ObjectMeta,
  type SortState,
} from '../lib/records';
import { useLoad } from '../lib/use-load';
import { useSession } from '../session';

const PAGE = 25;
type Rec = Record<string, unknown>;

type RecordPage = Extract<RecordsQueryResponse, { items: unknown }>;

/** `POST query` answers a page of records, or groups when it aggregates (the console never asks for those). */
function isRecordPage(res: RecordsQueryResponse): res is RecordPage {
  return Array.isArray((res as { items?: unknown }).items);
}

/** A paged, sortable, filterable list of one object's records, with the columns the caller may read. */
export function RecordsPage({ meta }: { meta: ObjectMeta }): ReactNode {
  const { api } = useSession();
  const [sort, setSort] = useState<SortState | undefined>();
  const [filterField, setFilterField] = useState<string | null>(meta.fields[0]?.name ?? null);
  const [filterText, setFilterText] = useState('');
  const [filter, setFilter] = useState<FilterState | undefined>();
  // Cursors of the pages seen so far: the server pages by keyset, so "previous" re-reads a known cursor.
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const page = useLoad(async () => {
    const res = await api.client.recordsQuery({ body: buildQuery(meta, { sort, filter, cursor, limit: PAGE }) });
    // A query without groupBy answers a page of records (the one list envelope), never groups.
    if (!isRecordPage(res)) throw new Error('The query answered groups instead of records.');
    return { records: itemsOf<Rec>(res), nextCursor: res.nextCursor ?? undefined };
  }, [api, meta, sort, filter, cursor]);
  const columns = useMemo(
    () =>
      readableColumns(meta).map((name, i) => ({
        id: name,
        header: name,
        sortable: true,
        render: i === 0 ? (r: Rec) => <Link to={`/records/${meta.name}/${String(r.id)}`}>{formatValue(r[name])}</Link> : undefined,
      })),
    [meta],
  );
  const onSort = (field: string): void => {
    setSort((s) => (s?.field === field ? { field, desc: !s.desc } : { field, desc: false }));
    setCursors([undefined]);
  };
  const applyFilter = (e: FormEvent): void => {
    e.preventDefault();
    setFilter(filterField ? { field: filterField, value: filterText } : undefined);
    setCursors([undefined]);
  };
  return (
    <Stack>
      <Title order={1} size="h3">
        {meta.label ?? meta.name}
      </Title>
      <form onSubmit={applyFilter} aria-label="Filter records">
        <Group align="end">
          <Select
            label="Filter on"
            data={meta.fields.map((f) => ({ value: f.name, label: f.name }))}
            value={filterField}
            onChange={setFilterField}
            allowDeselect={false}
          />
          <TextInput label="Value" value={filterText} onChange={(e) => setFilterText(e.currentTarget.value)} />
          <Button type="submit" variant="default">
            Apply
          </Button>
        </Group>
      </form>
      <ProblemAlert error={page.error} title="The records could not be loaded" />
      {page.loading ? <Loading /> : null}
      {page.data && page.data.records.length === 0 ? <Empty>No records you can see match.</Empty> : null}
      {page.data && page.data.records.length > 0 ? (
        <DataTable
          caption={`${meta.label ?? meta.name} records`}
          columns={columns}
          rows={page.data.records}
          rowKey={(r) => String(r.id)}
          sort={sort}
          onSort={onSort}
        />
      ) : null}
      <Group>
        <Button variant="default" disabled={cursors.length < 2} onClick={() => setCursors((c) => c.slice(0, -1))}>
          Previous page
        </Button>
        <Text size="sm">Page {cursors.length}</Text>
        <Button variant="default" disabled={!page.data?.nextCursor} onClick={() => setCursors((c) => [...c, page.data!.nextCursor])}>
          Next page
        </Button>
      </Group>
    </Stack>
  );
}

interface Explanation {
  allowed: boolean;
  decidedBy?: string;
  source?: string;
  steps?: unknown[];
}

/** One record: its readable fields, an edit form that sends If-Match, its shares, and "why can I see this". */
export function RecordPage({ meta, id }: { meta: ObjectMeta; id: string }): ReactNode {
  const { api } = useSession();
  const ref = useMemo(() => ({ object: meta.name, id }), [meta.name, id]);
  const loaded = useLoad((): Promise<Rec> => api.client.recordsGet(ref), [api, ref]);
  const [record, setRecord] = useState<Rec | undefined>();
  const [form, setForm] = useState<Record<string, string>>({});
  const [editing, setEditing] = useState(false);
  const [saveError, setSaveError] = useState<unknown>();
  const [conflict, setConflict] = useState<Rec | undefined>();
  const [saved, setSaved] = useState<string | undefined>();
  const [why, setWhy] = useState<Explanation | undefined>();
  const [whyError, setWhyError] = useState<unknown>();
  const shares = useLoad(async () => itemsOf<Rec>(await api.client.recordSharesList(ref)), [api, ref]);

  useEffect(() => {
    if (loaded.data) setRecord(loaded.data);
  }, [loaded.data]);

  if (loaded.loading && !record) return <Loading />;
  if (loaded.error) return <ProblemAlert error={loaded.error} title="This record cannot be shown" />;
  if (!record) return null;

  const startEdit = (): void => {
    setForm(Object.fromEntries(meta.fields.map((f) => [f.name, record[f.name] == null ? '' : String(record[f.name])])));
    setEditing(true);
    setSaved(undefined);
  };
  const save = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setSaveError(undefined);
    setConflict(undefined);
    const values = changedValues(meta, record, form);
    try {
      const res = await api.withStatus((c) =>
        c.recordsUpdate({ ...ref, body: values, headers: { 'if-match': `"${String(record.version)}"` } }),
      );
      if (res.status === 202 || 'pendingAction' in res.body) {
        const pending = (res.body as { pendingAction?: { id?: unknown } }).pendingAction;
        setSaved(`Your change waits for approval (${typeof pending?.id === 'string' ? pending.id : 'pending'}).`);
      } else {
        setRecord(res.body);
        setSaved('Saved.');
      }
      setEditing(false);
    } catch (err) {
      setSaveError(err);
      // Someone else saved first: show what the record holds now next to the edit, keep the form.
      if (err instanceof ApiError && err.status === 412) {
        const now = await api.client.recordsGet(ref).catch(() => undefined);
        if (now) setConflict(now);
      }
    }
  };
  const explain = async (): Promise<void> => {
    setWhyError(undefined);
    try {
      // The explain answer is an open object in the API's schema: the page names the fields it shows.
      const answer: unknown = await api.client.accessExplainExplain({ body: { action: 'read', object: meta.name, recordId: id } });
      setWhy(answer as Explanation);
    } catch (err) {
      setWhyError(err);
    }
  };

  return (
    <Stack>
      <Title order={1} size="h3">
        {meta.label ?? meta.name}: {formatValue(record.name ?? record.id)}
      </Title>
      {saved ? (
        <Alert color="green" role="status">
          {saved}
        </Alert>
      ) : null}
      {!editing ? (
        <>
          <Table withTableBorder variant="vertical" aria-label="Record fields" data-testid="record-fields">
            <Table.Tbody>
              {[...meta.fields.map((f) => f.name), 'owner_id', 'version', 'updated_at'].map((k) => (
                <Table.Tr key={k}>
                  <Table.Th scope="row">{k}</Table.Th>
                  <Table.Td data-field={k}>{formatValue(record[k])}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <Group>
            {meta.fields.some(isEditable) ? <Button onClick={startEdit}>Edit</Button> : null}
            <Button variant="default" onClick={() => void explain()}>
              Why can I see this?
            </Button>
          </Group>
        </>
      ) : (
        <form onSubmit={save} aria-label="Edit record">
          <Stack>
            {meta.fields.map((f) => (
              <FieldInput key={f.name} field={f} value={form[f.name] ?? ''} onChange={(v) => setForm((s) => ({ ...s, [f.name]: v }))} />
            ))}
            {conflict ? (
              <Alert color="orange" title="Conflict: someone else changed this record" data-testid="edit-conflict">
                <Text size="sm">
                  You edited version {String(record.version)}; it is now version {String(conflict.version)}. Nothing was saved. The values
                  now:
                </Text>
                <Code block>{JSON.stringify(Object.fromEntries(meta.fields.map((f) => [f.name, conflict[f.name]])), null, 2)}</Code>
                <Button
                  mt="xs"
                  size="xs"
                  variant="default"
                  onClick={() => {
                    setRecord(conflict);
                    setConflict(undefined);
                    setSaveError(undefined);
                  }}
                >
                  Edit on top of the current version
                </Button>
              </Alert>
            ) : null}
            <ProblemAlert error={saveError} title="Not saved" />
            <Group>
              <Button type="submit">Save</Button>
              <Button variant="default" onClick={() => setEditing(false)}>
                Cancel
              </Button>
            </Group>
          </Stack>
        </form>
      )}
      <ProblemAlert error={whyError} title="No explanation" />
      {why ? (
        <Alert color="blue" title="Why you can see this" data-testid="explain">
          <Text size="sm">
            {why.allowed ? 'Allowed' : 'Not allowed'}
            {why.decidedBy ? ` — decided by ${why.decidedBy}` : ''}
            {why.source ? ` (${why.source})` : ''}
          </Text>
          {why.steps?.length ? <Code block>{JSON.stringify(why.steps, null, 2)}</Code> : null}
        </Alert>
      ) : null}
      <Title order={2} size="h4">
        Shares
      </Title>
      {shares.loading ? <Loading /> : null}
      {shares.error ? <ProblemAlert error={shares.error} title="Shares are not shown to you" /> : null}
      {shares.data && shares.data.length === 0 ? <Empty>Not shared with anyone.</Empty> : null}
      {shares.data && shares.data.length > 0 ? (
        <DataTable
          caption="Shares"
          rows={shares.data}
          columns={[
            { id: 'granteeType', header: 'Grantee type' },
            { id: 'granteeId', header: 'Grantee' },
            { id: 'accessLevel', header: 'Access' },
          ]}
        />
      ) : null}
    </Stack>
  );
}

function FieldInput({ field, value, onChange }: { field: FieldMeta; value: string; onChange: (v: string) => void }): ReactNode {
  // Read-only for this caller (R5, as GET meta/objects says): shown, never editable, never sent.
  const readOnly = !isEditable(field);
  const common = {
    label: field.name,
    disabled: readOnly,
    description: readOnly ? 'Read only for you' : undefined,
    'data-field-input': field.name,
  };
  if (field.type === 'select' && field.options) {
    return (
      <Select
        {...common}
        data={field.options}
        value={value || null}
        onChange={(v) => onChange(v ?? '')}
        clearable={!field.required && !readOnly}
      />
    );
  }
  if (['number', 'currency', 'percent', 'integer'].includes(field.type)) {
    return (
      <NumberInput
        {...common}
        value={value === '' ? '' : Number(value)}
        onChange={(v) => onChange(v === '' ? '' : String(v))}
        required={field.required && !readOnly}
      />
    );
  }
  return <TextInput {...common} value={value} onChange={(e) => onChange(e.currentTarget.value)} required={field.required && !readOnly} />;
}
