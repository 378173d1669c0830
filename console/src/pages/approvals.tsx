import { Alert, Badge, Button, Checkbox, Code, Group, Paper, SegmentedControl, Stack, Table, Text, Textarea, Title } from '@mantine/core';
import { useEffect, useState, type ReactNode } from 'react';
import type { PendingActionsGetResponse, PendingActionsListQuery, PendingActionsListResponse } from '@custodian/client';
import type { ApiClient } from '../api/client';
import { ApiError } from '../api/problem';
import { DataTable } from '../components/data-table';
import { Empty, Link, Loading, ProblemAlert } from '../components/common';
import { diffRows, formatValue } from '../lib/diff';
import { startPolling } from '../lib/poll';
import { useLoad } from '../lib/use-load';
import { useSession } from '../session';

/** One row of the inbox, as `GET /approvals` types it. */
type Summary = PendingActionsListResponse['items'][number];

/** The detail as `GET /approvals/:id` types it, with the parts its schema leaves open named. */
type Detail = PendingActionsGetResponse & {
  current: Record<string, unknown> | null;
  context: Record<string, unknown>;
  action: string | null;
  decisions: Array<{ approverUserId: string; decision: string; reason: string | null; at: string }>;
  outcome: { code?: string; message?: string; version?: number | null } | null;
};

/** One pending action as the detail page shows it. */
async function getDetail(api: ApiClient, id: string): Promise<Detail> {
  return (await api.client.pendingActionsGet({ id })) as Detail;
}

/** How often the inbox and an open action look for decisions made elsewhere. */
const POLL = { intervalMs: 4000, maxIntervalMs: 60_000 };

const FILTERS = {
  waiting: { waitingForMe: 'true' },
  mine: { mine: 'true' },
  all: {},
} as const satisfies Record<string, PendingActionsListQuery>;
type Filter = keyof typeof FILTERS;

export function ApprovalsPage(): ReactNode {
  const { api } = useSession();
  const [filter, setFilter] = useState<Filter>('waiting');
  const [items, setItems] = useState<Summary[] | undefined>();
  const [error, setError] = useState<unknown>();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [reason, setReason] = useState('');
  const [bulkResult, setBulkResult] = useState<Array<{ id: string; status: number; code?: string; state?: string }> | undefined>();

  useEffect(() => {
    let live = true;
    setItems(undefined);
    setSelected(new Set());
    const load = async (): Promise<void> => {
      try {
        const res = await api.client.pendingActionsList({ query: { limit: '100', ...FILTERS[filter] } });
        if (live) {
          setItems(res.items);
          setError(undefined);
        }
      } catch (e) {
        if (live) setError(e);
        throw e;
      }
    };
    load().catch(() => undefined);
    const stop = startPolling(load, POLL);
    return () => {
      live = false;
      stop();
    };
  }, [api, filter]);

  const toggle = (id: string): void =>
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });

  const bulk = async (decision: 'approve' | 'reject'): Promise<void> => {
    setError(undefined);
    try {
      const res = await api.client.pendingActionsBulk({
        body: {
          items: [...selected].map((id) =>
            decision === 'reject' ? { id, decision, reason: reason || 'Rejected in bulk' } : { id, decision },
          ),
        },
      });
      setBulkResult(res.results);
      setSelected(new Set());
    } catch (e) {
      setError(e);
    }
  };

  const pending = items?.filter((i) => i.state === 'pending') ?? [];
  return (
    <Stack>
      <Title order={1} size="h3">
        Approvals
      </Title>
      <SegmentedControl
        aria-label="Which approvals"
        value={filter}
        onChange={(v) => setFilter(v as Filter)}
        data={[
          { value: 'waiting', label: 'Waiting for me' },
          { value: 'mine', label: 'Mine' },
          { value: 'all', label: 'All' },
        ]}
      />
      <ProblemAlert error={error} />
      {bulkResult ? (
        <Alert color="blue" title="Bulk decision" withCloseButton onClose={() => setBulkResult(undefined)} closeButtonLabel="Dismiss">
          {bulkResult.map((r) => (
            <Text key={r.id} size="sm">
              {r.id.slice(0, 8)}: {r.status < 300 ? r.state : `${r.status} ${r.code}`}
            </Text>
          ))}
        </Alert>
      ) : null}
      {!items && !error ? <Loading /> : null}
      {items && items.length === 0 ? <Empty>Nothing here. New proposals appear on their own.</Empty> : null}
      {items && items.length > 0 ? (
        <>
          <DataTable
            caption="Pending actions"
            rowKey={(r) => String(r.id)}
            rows={items as unknown as Array<Record<string, unknown>>}
            columns={[
              {
                id: 'select',
                header: 'Select',
                render: (r) =>
                  r.state === 'pending' ? (
                    <Checkbox
                      aria-label={`Select ${String(r.kind)} ${String(r.id).slice(0, 8)}`}
                      checked={selected.has(String(r.id))}
                      onChange={() => toggle(String(r.id))}
                    />
                  ) : null,
              },
              {
                id: 'kind',
                header: 'Change',
                render: (r) => <Link to={`/approvals/${String(r.id)}`}>{`${String(r.kind)} on ${String(r.object)}`}</Link>,
              },
              {
                id: 'requester',
                header: 'Requested by',
                render: (r) => {
                  const q = (r as unknown as Summary).requester;
                  return q.agent ? `${q.agent.name} (agent) for ${q.userId.slice(0, 8)}` : q.userId.slice(0, 8);
                },
              },
              { id: 'justification', header: 'Why' },
              { id: 'state', header: 'State', render: (r) => <StateBadge state={String(r.state)} /> },
              { id: 'createdAt', header: 'Filed', render: (r) => new Date(String(r.createdAt)).toLocaleString() },
            ]}
          />
          {pending.length > 0 ? (
            <Paper withBorder p="sm">
              <Stack gap="xs">
                <Text size="sm">{selected.size} selected</Text>
                <Textarea
                  label="Reason (for a bulk reject)"
                  value={reason}
                  onChange={(e) => setReason(e.currentTarget.value)}
                  autosize
                  minRows={1}
                />
                <Group>
                  <Button disabled={!selected.size} onClick={() => void bulk('approve')}>
                    Approve selected
                  </Button>
                  <Button disabled={!selected.size} color="red" variant="outline" onClick={() => void bulk('reject')}>
                    Reject selected
                  </Button>
                </Group>
              </Stack>
            </Paper>
          ) : null}
        </>
      ) : null}
    </Stack>
  );
}

function StateBadge({ state }: { state: string }): ReactNode {
  // Shade 9 of these hues keeps 4.5:1 on white for the badge's small bold text.
  const color = state === 'pending' ? 'indigo.9' : state === 'applied' || state === 'approved' ? 'teal.9' : 'red.9';
  return (
    <Badge variant="outline" color={color} data-testid="approval-state">
      {state}
    </Badge>
  );
}

export function ApprovalDetailPage({ id }: { id: string }): ReactNode {
  const { api } = useSession();
  const loaded = useLoad(() => getDetail(api, id), [api, id]);
  const [detail, setDetail] = useState<Detail | undefined>();
  const [changedElsewhere, setChangedElsewhere] = useState(false);
  const [reason, setReason] = useState('');
  const [actionError, setActionError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  useEffect(() => setDetail(loaded.data), [loaded.data]);

  // Live updates: a decision made by someone else (or the apply) shows up without a reload.
  useEffect(() => {
    // "approved" is followed by the apply (applied, stale, forbidden or failed): keep watching until then.
    if (!detail || (detail.state !== 'pending' && detail.state !== 'approved')) return;
    return startPolling(async () => {
      const res = await getDetail(api, id);
      if (res.revision !== detail.revision || res.state !== detail.state) {
        setDetail(res);
        setChangedElsewhere(true);
      }
    }, POLL);
  }, [api, id, detail]);

  if (loaded.loading && !detail) return <Loading />;
  if (loaded.error) return <ProblemAlert error={loaded.error} title="This action cannot be shown" />;
  if (!detail) return null;

  const decide = async (decision: 'approve' | 'reject'): Promise<void> => {
    setBusy(true);
    setActionError(undefined);
    try {
      const headers = { 'if-match': `"${detail.revision}"` };
      const res =
        decision === 'reject'
          ? await api.client.pendingActionsReject({ id, body: { reason }, headers })
          : await api.client.pendingActionsApprove({ id, body: reason ? { comment: reason } : {}, headers });
      const fresh = await getDetail(api, id).catch((): Detail => ({ ...detail, ...res, outcome: detail.outcome }));
      setDetail(fresh);
      setChangedElsewhere(false);
    } catch (e) {
      setActionError(e);
      if (e instanceof ApiError && (e.status === 412 || e.status === 409)) loaded.reload();
    } finally {
      setBusy(false);
    }
  };

  const rows = diffRows(detail.diff);
  const ctx = detail.context ?? {};
  return (
    <Stack>
      <Title order={1} size="h3">
        {detail.kind} on {detail.object}
      </Title>
      <Group>
        <StateBadge state={detail.state} />
        <Text size="sm">
          Requested by {detail.requester.agent ? `${detail.requester.agent.name} (agent ${detail.requester.agent.clientId}) for ` : ''}
          user {detail.requester.userId}
        </Text>
      </Group>
      {changedElsewhere ? (
        <Alert color="blue" role="status" title="Updated">
          This action changed while you were looking at it; what you see is current.
        </Alert>
      ) : null}
      {detail.justification ? <Text>Justification: {detail.justification}</Text> : null}
      {detail.recordId ? (
        <Text size="sm">
          Record: <Link to={`/records/${detail.object}/${detail.recordId}`}>{detail.recordId}</Link>
        </Text>
      ) : null}
      <Title order={2} size="h4">
        Proposed change
      </Title>
      {rows.length === 0 ? (
        <Empty>No field changes.</Empty>
      ) : (
        <Table withTableBorder aria-label="Proposed change" data-testid="approval-diff">
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Field</Table.Th>
              <Table.Th scope="col">Current</Table.Th>
              <Table.Th scope="col">Proposed</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((r) => (
              <Table.Tr key={r.field} data-field={r.field}>
                <Table.Th scope="row">{r.field}</Table.Th>
                {r.kind === 'hidden' ? (
                  <Table.Td colSpan={2}>
                    <Badge variant="outline" color="gray.9">
                      changed, hidden
                    </Badge>
                  </Table.Td>
                ) : r.kind === 'changed' ? (
                  <>
                    <Table.Td>{formatValue(r.from)}</Table.Td>
                    <Table.Td fw={700}>{formatValue(r.to)}</Table.Td>
                  </>
                ) : (
                  <Table.Td colSpan={2}>
                    <Code block>{JSON.stringify(r.value, null, 2)}</Code>
                  </Table.Td>
                )}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {detail.current ? (
        <>
          <Title order={2} size="h4">
            The record now
          </Title>
          <Table withTableBorder variant="vertical" aria-label="The record now">
            <Table.Tbody>
              {Object.entries(detail.current).map(([k, v]) => (
                <Table.Tr key={k}>
                  <Table.Th scope="row">{k}</Table.Th>
                  <Table.Td>{formatValue(v)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </>
      ) : null}
      <Title order={2} size="h4">
        Agent context
      </Title>
      {Object.keys(ctx).length === 0 ? (
        <Empty>No context was filed with this action.</Empty>
      ) : (
        <Code block aria-label="Agent context">
          {JSON.stringify(ctx, null, 2)}
        </Code>
      )}
      {detail.decisions.length ? (
        <>
          <Title order={2} size="h4">
            Decisions
          </Title>
          {detail.decisions.map((d, i) => (
            <Text key={i} size="sm">
              {d.decision} by {d.approverUserId} at {new Date(d.at).toLocaleString()}
              {d.reason ? ` — ${d.reason}` : ''}
            </Text>
          ))}
        </>
      ) : null}
      {detail.outcome ? (
        <Text size="sm" data-testid="approval-outcome">
          Outcome: {detail.outcome.code ?? 'ok'}
          {detail.outcome.version != null ? ` (record version ${detail.outcome.version})` : ''}
          {detail.outcome.message ? ` — ${detail.outcome.message}` : ''}
        </Text>
      ) : null}
      <ProblemAlert error={actionError} title="The decision was not recorded" />
      {detail.state === 'pending' ? (
        <Paper withBorder p="sm">
          <Stack gap="xs">
            <Textarea
              label="Reason or comment"
              description="Required to reject"
              value={reason}
              onChange={(e) => setReason(e.currentTarget.value)}
              autosize
              minRows={2}
            />
            <Group>
              <Button loading={busy} onClick={() => void decide('approve')}>
                Approve
              </Button>
              <Button loading={busy} color="red" variant="outline" disabled={!reason.trim()} onClick={() => void decide('reject')}>
                Reject
              </Button>
            </Group>
          </Stack>
        </Paper>
      ) : null}
    </Stack>
  );
}
