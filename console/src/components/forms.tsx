import { Alert, Badge, Text } from '@mantine/core';
import type { CustodianClient } from '@custodian/client';
import { useCallback, useState, type ReactNode } from 'react';
import { useLoad, type Loaded } from '../lib/use-load';
import { useSession } from '../session';
import { Empty, Link, Loading, ProblemAlert } from './common';
import type { PendingAction } from '../lib/pending';

export { pendingOf, type PendingAction } from '../lib/pending';

export type Item = Record<string, unknown>;

export interface Submit {
  busy: boolean;
  error: unknown;
  /** Runs one submission: the error (problem+json with code and request id) is kept for the form to show. */
  run: (fn: () => Promise<void>) => Promise<boolean>;
  clear: () => void;
}

export function useSubmit(): Submit {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const run = useCallback(async (fn: () => Promise<void>): Promise<boolean> => {
    setBusy(true);
    setError(undefined);
    try {
      await fn();
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: () => setError(undefined) };
}

/**
 * A change that was not applied but filed for approval (`202` with `pendingAction`, or a proposal's
 * `201`): says so and links to the action in the approvals inbox.
 */
export function PendingNotice({ action, what }: { action: PendingAction | undefined; what: string }): ReactNode {
  if (!action) return null;
  return (
    <Alert color="yellow" title="Waiting for approval" role="status" data-testid="pending-notice">
      <Text size="sm">
        {what} was not applied yet: it is a pending {action.kind ?? 'action'} ({action.state ?? 'pending'}).{' '}
        <Link to={`/approvals/${action.id}`}>Open the approval</Link>
      </Text>
    </Alert>
  );
}

export function Done({ children }: { children: ReactNode }): ReactNode {
  if (!children) return null;
  return (
    <Alert color="green" role="status">
      {children}
    </Alert>
  );
}

/** The directory lists the admin pages pick from, each its typed call (offset-paged, 200 at most). */
const LISTS = {
  users: (c: CustodianClient) => c.usersList({ query: { limit: '200' } }),
  roles: (c: CustodianClient) => c.rolesList({ query: { limit: '200' } }),
  groups: (c: CustodianClient) => c.groupsList({ query: { limit: '200' } }),
  permissionSets: (c: CustodianClient) => c.permissionSetsList({ query: { limit: '200' } }),
  apiKeys: (c: CustodianClient) => c.apiKeysList({ query: { limit: '200' } }),
} satisfies Record<string, (c: CustodianClient) => Promise<{ items: Item[] }>>;

/** The first 200 items of one directory list. */
export function useList(list: keyof typeof LISTS, deps: unknown[] = []): Loaded<Item[]> {
  const { api } = useSession();
  return useLoad(async () => (await LISTS[list](api.client)).items, [api, list, ...deps]);
}

export function ListState({ loaded, what }: { loaded: { loading: boolean; error: unknown; data?: unknown[] }; what: string }): ReactNode {
  return (
    <>
      {loaded.loading && !loaded.data ? <Loading /> : null}
      <ProblemAlert error={loaded.error} title={`${what} could not be loaded`} />
      {loaded.data && loaded.data.length === 0 ? <Empty>No {what.toLowerCase()} yet.</Empty> : null}
    </>
  );
}

export function CapabilityBadges({ list }: { list: string[] | undefined }): ReactNode {
  if (!list?.length) return null;
  return (
    <Text size="sm">
      Capabilities:{' '}
      {list.map((c) => (
        <Badge key={c} variant="outline" color="dark" mr={4}>
          {c}
        </Badge>
      ))}
    </Text>
  );
}
