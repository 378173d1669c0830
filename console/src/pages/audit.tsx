import { Alert, Button, Code, Group, Progress, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useState, type FormEvent, type ReactNode } from 'react';
import type { AuditListQuery } from '@custodian/client';
import { itemsOf } from '../api/client';
import { DataTable } from '../components/data-table';
import { Empty, Link, Loading, ProblemAlert } from '../components/common';
import { useLoad } from '../lib/use-load';
import { useSession } from '../session';

interface AuditRow {
  seq: number | string;
  archived?: boolean;
  redacted?: boolean;
  event: {
    id: string;
    action: string;
    outcome?: string;
    occurredAt: string;
    actor?: { userId?: string; agent?: { clientId?: string } };
    target?: { type?: string; id?: string };
  };
}

interface Verify {
  ok: boolean;
  rows: number;
  headSeq?: number;
  firstBadSeq?: number;
  problem?: string;
  checkpoint?: { seq: number; valid: boolean } | null;
}

const FILTERS = [
  { key: 'actor', label: 'Actor (user id)' },
  { key: 'action', label: 'Event type' },
  { key: 'objectType', label: 'Object' },
  { key: 'recordId', label: 'Record id' },
  { key: 'from', label: 'From (date-time)' },
  { key: 'to', label: 'To (date-time)' },
] as const;

/** Audit search, chain verification and export; the server already hides what this reader may not see. */
export function AuditPage(): ReactNode {
  const { api } = useSession();
  const [form, setForm] = useState<Record<string, string>>({});
  const [query, setQuery] = useState<AuditListQuery>({});
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const page = useLoad(async () => {
    const res = await api.client.auditList({ query: { ...query, limit: '50', ...(cursor ? { cursor } : {}) } });
    return { items: itemsOf<AuditRow>(res), nextCursor: res.nextCursor };
  }, [api, query, cursor]);
  const [verifying, setVerifying] = useState(false);
  const [verify, setVerify] = useState<Verify | undefined>();
  const [verifyError, setVerifyError] = useState<unknown>();
  const [exportError, setExportError] = useState<unknown>();
  const [exported, setExported] = useState<string | undefined>();

  const search = (e: FormEvent): void => {
    e.preventDefault();
    const next: AuditListQuery = {};
    for (const f of FILTERS) {
      const v = form[f.key]?.trim();
      if (v) next[f.key] = v;
    }
    setQuery(next);
    setCursors([undefined]);
  };
  const runVerify = async (): Promise<void> => {
    setVerifying(true);
    setVerify(undefined);
    setVerifyError(undefined);
    try {
      setVerify(await api.client.auditVerify());
    } catch (e) {
      setVerifyError(e);
    } finally {
      setVerifying(false);
    }
  };
  const runExport = async (): Promise<void> => {
    setExportError(undefined);
    try {
      // NDJSON, not one JSON answer: the typed method hands back the response itself.
      const res = await api.client.auditExport();
      const body = await res.text();
      const view = res.headers.get('custodian-audit-view') ?? 'unknown';
      const url = URL.createObjectURL(new Blob([body], { type: 'application/x-ndjson' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `audit-export-${new Date().toISOString().slice(0, 19)}.ndjson`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setExported(`${body.split('\n').filter(Boolean).length} events exported (${view} view).`);
    } catch (e) {
      setExportError(e);
    }
  };

  return (
    <Stack>
      <Title order={1} size="h3">
        Audit log
      </Title>
      <Group>
        <Button onClick={() => void runVerify()} loading={verifying}>
          Verify chain
        </Button>
        <Button variant="default" onClick={() => void runExport()}>
          Export (NDJSON)
        </Button>
      </Group>
      {verifying ? <Progress value={100} animated aria-label="Verifying the chain" /> : null}
      <ProblemAlert error={verifyError} title="Verification could not run" />
      {verify ? (
        <Alert
          color={verify.ok ? 'green' : 'red'}
          title={verify.ok ? 'Chain verified' : 'Tampering found'}
          data-testid="verify-result"
          role="status"
        >
          <Text size="sm">
            {verify.rows} rows checked{verify.headSeq != null ? `, head at ${verify.headSeq}` : ''}
            {verify.checkpoint ? `; signed checkpoint at ${verify.checkpoint.seq} ${verify.checkpoint.valid ? 'valid' : 'INVALID'}` : ''}
            {verify.ok ? '' : `; first bad row ${verify.firstBadSeq ?? '?'} (${verify.problem ?? 'unknown'})`}
          </Text>
        </Alert>
      ) : null}
      <ProblemAlert error={exportError} title="Export failed" />
      {exported ? (
        <Alert color="green" role="status">
          {exported}
        </Alert>
      ) : null}
      <form onSubmit={search} aria-label="Search the audit log">
        <Group align="end">
          {FILTERS.map((f) => (
            <TextInput
              key={f.key}
              label={f.label}
              value={form[f.key] ?? ''}
              onChange={(e) => setForm((s) => ({ ...s, [f.key]: e.currentTarget.value }))}
            />
          ))}
          <Button type="submit" variant="default">
            Search
          </Button>
        </Group>
      </form>
      <ProblemAlert error={page.error} title="The audit log could not be read" />
      {page.loading ? <Loading /> : null}
      {page.data && page.data.items.length === 0 ? (
        <Empty>No events on this page{page.data.nextCursor ? ' (some were withheld; try the next page)' : ''}.</Empty>
      ) : null}
      {page.data && page.data.items.length > 0 ? (
        <DataTable
          caption="Audit events"
          rowKey={(r) => String((r as unknown as AuditRow).event.id)}
          rows={page.data.items as unknown as Array<Record<string, unknown>>}
          columns={[
            { id: 'seq', header: 'Seq' },
            { id: 'when', header: 'When', render: (r) => new Date((r as unknown as AuditRow).event.occurredAt).toLocaleString() },
            {
              id: 'action',
              header: 'Event',
              render: (r) => <Link to={`/audit/${(r as unknown as AuditRow).event.id}`}>{(r as unknown as AuditRow).event.action}</Link>,
            },
            { id: 'outcome', header: 'Outcome', render: (r) => (r as unknown as AuditRow).event.outcome ?? '—' },
            {
              id: 'actor',
              header: 'Actor',
              render: (r) => {
                const a = (r as unknown as AuditRow).event.actor;
                return `${a?.userId?.slice(0, 8) ?? '—'}${a?.agent?.clientId ? ` via ${a.agent.clientId}` : ''}`;
              },
            },
            {
              id: 'target',
              header: 'Target',
              render: (r) => {
                const t = (r as unknown as AuditRow).event.target;
                return t ? `${t.type ?? ''} ${t.id?.slice(0, 8) ?? ''}` : '—';
              },
            },
          ]}
        />
      ) : null}
      <Group>
        <Button variant="default" disabled={cursors.length < 2} onClick={() => setCursors((c) => c.slice(0, -1))}>
          Newer
        </Button>
        <Button
          variant="default"
          disabled={!page.data?.nextCursor}
          onClick={() => setCursors((c) => [...c, page.data!.nextCursor ?? undefined])}
        >
          Older
        </Button>
      </Group>
    </Stack>
  );
}

export function AuditEventPage({ id }: { id: string }): ReactNode {
  const { api } = useSession();
  // One event's answer is an open object in the API's schema: the page names what it reads.
  const loaded = useLoad(async () => {
    const answer: unknown = await api.client.auditGet({ id });
    return answer as AuditRow;
  }, [api, id]);
  if (loaded.loading) return <Loading />;
  if (loaded.error) return <ProblemAlert error={loaded.error} title="This event cannot be shown" />;
  const row = loaded.data!;
  const event = (row.event ?? row) as AuditRow['event'];
  return (
    <Stack>
      <Title order={1} size="h3">
        Event {event.action}
      </Title>
      <Table withTableBorder variant="vertical" aria-label="Event summary">
        <Table.Tbody>
          <Table.Tr>
            <Table.Th scope="row">Id</Table.Th>
            <Table.Td>{event.id}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th scope="row">Occurred</Table.Th>
            <Table.Td>{event.occurredAt}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th scope="row">Sequence</Table.Th>
            <Table.Td>{String(row.seq ?? '—')}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Th scope="row">Redacted for you</Table.Th>
            <Table.Td>{row.redacted ? 'yes' : 'no'}</Table.Td>
          </Table.Tr>
        </Table.Tbody>
      </Table>
      <Code block aria-label="Event as stored">
        {JSON.stringify(row, null, 2)}
      </Code>
      <Link to="/audit">Back to the audit log</Link>
    </Stack>
  );
}
