import { AppShell, Box, Button, Center, Group, Loader, NavLink, ScrollArea, Text, Title } from '@mantine/core';
import { Suspense, lazy, useCallback, useEffect, useState, type ReactNode } from 'react';
import { itemsOf, type ApiClient } from './api/client';
import { Loading, ProblemAlert } from './components/common';
import type { ObjectMeta } from './lib/records';
import { BASE, match, navigate, usePath } from './lib/router';
import { ApprovalDetailPage, ApprovalsPage } from './pages/approvals';
import { AuditEventPage, AuditPage } from './pages/audit';
import { MePage } from './pages/me';
import { RecordPage, RecordsPage } from './pages/records';
import { SignInPage } from './pages/sign-in';
import { SessionContext, can, useSession, type Me, type Session } from './session';

// Administration and the agents page load on first use: the initial JavaScript stays small.
const AdminPage = lazy(async () => ({ default: (await import('./pages/admin')).AdminPage }));
const UserAdminPage = lazy(async () => ({ default: (await import('./pages/admin')).UserAdminPage }));
const AgentsPage = lazy(async () => ({ default: (await import('./pages/agents')).AgentsPage }));
const ConversationPage = lazy(async () => ({ default: (await import('./pages/agents')).ConversationPage }));

export function App({ api }: { api: ApiClient }): ReactNode {
  const [session, setSession] = useState<Session | undefined>();
  const [error, setError] = useState<unknown>();
  const [loading, setLoading] = useState(false);
  // Until the first resume attempt answers, we do not know whether the browser holds a session.
  const [resuming, setResuming] = useState(true);

  const signOut = useCallback(() => {
    void api.logout();
  }, [api]);

  useEffect(
    () =>
      api.onChange((signedIn) => {
        if (!signedIn) {
          setSession(undefined);
          navigate('/');
        }
      }),
    [api],
  );

  const afterSignIn = async (): Promise<void> => {
    setLoading(true);
    setError(undefined);
    try {
      const [me, meta] = await Promise.all([api.client.authMe(), api.client.objectMetadataList({ query: { view: 'caller' } })]);
      setSession({ api, me: me as Me, objects: itemsOf<ObjectMeta>(meta), signOut });
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    let live = true;
    // A reload: the httpOnly refresh cookie (if any) gives a new access token; no token is stored anywhere.
    api
      .resume()
      .then(async (signedIn) => {
        if (signedIn && live) await afterSignIn();
      })
      .catch((e: unknown) => live && setError(e))
      .finally(() => live && setResuming(false));
    return () => {
      live = false;
    };
  }, [api]);

  if (!session && resuming) {
    return (
      <Center h="100vh" component="main" aria-busy="true">
        <Loader aria-label="Restoring your session" />
      </Center>
    );
  }
  if (!session) {
    return (
      <SignInPage
        busy={loading}
        error={error}
        onSubmit={async (email, password) => {
          setError(undefined);
          try {
            await api.login(email, password);
          } catch (e) {
            setError(e);
            return;
          }
          await afterSignIn();
        }}
      />
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <Shell />
    </SessionContext.Provider>
  );
}

interface NavItem {
  to: string;
  label: string;
}

function Shell(): ReactNode {
  const { me, objects, signOut } = useSession();
  const path = usePath();
  const nav: Array<{ section: string; items: NavItem[] }> = [
    {
      section: 'Work',
      items: [{ to: '/approvals', label: 'Approvals' }, ...(can(me, 'agent_access') ? [{ to: '/agents', label: 'Agents' }] : [])],
    },
    { section: 'Records', items: objects.map((o) => ({ to: `/records/${o.name}`, label: plural(o.label ?? o.name) })) },
  ];
  if (can(me, 'view_audit')) nav.push({ section: 'Audit', items: [{ to: '/audit', label: 'Audit log' }] });
  const admin: NavItem[] = [];
  if (can(me, 'manage_users')) admin.push({ to: '/admin/users', label: 'Users' });
  if (can(me, 'manage_roles')) admin.push({ to: '/admin/roles', label: 'Roles' });
  if (can(me, 'manage_users') || can(me, 'manage_roles')) admin.push({ to: '/admin/groups', label: 'Groups' });
  if (can(me, 'manage_permissions')) admin.push({ to: '/admin/permission-sets', label: 'Permission sets' });
  if (can(me, 'manage_sharing')) admin.push({ to: '/admin/sharing', label: 'Sharing rules' });
  if (can(me, 'manage_api_keys') || can(me, 'api_access')) admin.push({ to: '/admin/api-keys', label: 'API keys' });
  if (can(me, 'manage_settings')) {
    admin.push({ to: '/admin/agent-profiles', label: 'Agent profiles' });
    admin.push({ to: '/admin/model-settings', label: 'Model settings' });
  }
  if (admin.length) nav.push({ section: 'Administration', items: admin });

  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 240, breakpoint: 'sm' }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Title order={2} size="h4">
            Custodian console
          </Title>
          <Group gap="sm">
            <NavLinkButton to="/me" label={me.email} />
            <Button variant="default" size="xs" onClick={signOut}>
              Sign out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main">
        <ScrollArea>
          {nav.map((s) => (
            <Box key={s.section} mb="sm" component="section" aria-label={s.section}>
              <Text size="xs" fw={700} tt="uppercase" px="sm" mb={4} c="gray.8">
                {s.section}
              </Text>
              {s.items.map((i) => (
                <NavLink
                  key={i.to}
                  href={`${BASE}${i.to}`}
                  label={i.label}
                  variant="filled"
                  active={path === i.to || path.startsWith(`${i.to}/`)}
                  aria-current={path === i.to || path.startsWith(`${i.to}/`) ? 'page' : undefined}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(i.to);
                  }}
                />
              ))}
            </Box>
          ))}
        </ScrollArea>
      </AppShell.Navbar>
      <AppShell.Main>
        <Suspense fallback={<Loading />}>
          <Page path={path} />
        </Suspense>
      </AppShell.Main>
    </AppShell>
  );
}

function NavLinkButton({ to, label }: { to: string; label: string }): ReactNode {
  return (
    <Button
      component="a"
      href={`${BASE}${to}`}
      variant="default"
      size="xs"
      onClick={(e: React.MouseEvent) => (e.preventDefault(), navigate(to))}
    >
      {label}
    </Button>
  );
}

function Page({ path }: { path: string }): ReactNode {
  const { objects } = useSession();
  let m: Record<string, string> | undefined;
  if (path === '/' || path === '/approvals') return <ApprovalsPage />;
  if ((m = match('/approvals/:id', path))) return <ApprovalDetailPage id={m.id} />;
  if (path === '/me') return <MePage />;
  if ((m = match('/records/:object', path))) {
    const meta = objects.find((o) => o.name === m!.object);
    return meta ? <RecordsPage key={meta.name} meta={meta} /> : <NotFound what="object" />;
  }
  if ((m = match('/records/:object/:id', path))) {
    const meta = objects.find((o) => o.name === m!.object);
    return meta ? <RecordPage key={m.id} meta={meta} id={m.id} /> : <NotFound what="object" />;
  }
  if (path === '/audit') return <AuditPage />;
  if ((m = match('/audit/:id', path))) return <AuditEventPage id={m.id} />;
  if ((m = match('/admin/users/:id', path))) return <UserAdminPage key={m.id} id={m.id} />;
  if ((m = match('/admin/:section', path))) return <AdminPage key={m.section} section={m.section} />;
  if (path === '/agents') return <AgentsPage />;
  if ((m = match('/agents/:id', path))) return <ConversationPage key={m.id} id={m.id} />;
  return <NotFound what="page" />;
}

function NotFound({ what }: { what: string }): ReactNode {
  return (
    <>
      <Title order={1} size="h3">
        Not found
      </Title>
      <ProblemAlert title={`No such ${what}`} error={new Error(`There is no ${what} here, or you may not see it.`)} />
    </>
  );
}

function plural(label: string): string {
  return label.endsWith('y') ? `${label.slice(0, -1)}ies` : `${label}s`;
}
