import { Button, Container, Divider, Paper, PasswordInput, Stack, TextInput, Title } from '@mantine/core';
import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { ProblemAlert } from '../components/common';
import { discoveryQuery, idpSignInHref, type OidcDiscovery } from '../lib/sign-in-idp';

/**
 * Whether the org (the console URL's `?org=`, else the typed email's domain) signs in through an
 * identity provider: `GET /api/v1/auth/oidc/discover`, asked once the input settles. Any failure
 * simply shows no button — password sign-in stays as it is.
 */
function useIdpSignIn(email: string): string | undefined {
  const [answer, setAnswer] = useState<{ query: string; discovery: OidcDiscovery } | undefined>();
  const query = discoveryQuery(email, window.location.search);
  useEffect(() => {
    if (!query) return undefined;
    let cancelled = false;
    const timer = setTimeout(() => {
      fetch(`/api/v1/auth/oidc/discover?${query}`, { headers: { accept: 'application/json' } })
        .then(async (res) => (res.ok ? ((await res.json()) as OidcDiscovery) : { oidc: false }))
        .then((discovery) => {
          if (!cancelled) setAnswer({ query, discovery });
        })
        .catch(() => undefined);
    }, 300);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [query]);
  return answer && answer.query === query ? idpSignInHref(answer.discovery, email, window.location.origin) : undefined;
}

export function SignInPage({
  onSubmit,
  error,
  busy,
}: {
  onSubmit: (email: string, password: string) => Promise<void>;
  error: unknown;
  busy: boolean;
}): ReactNode {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [sending, setSending] = useState(false);
  const idpHref = useIdpSignIn(email);
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setSending(true);
    try {
      await onSubmit(email, password);
    } finally {
      setSending(false);
    }
  };
  return (
    <Container size={420} py={60} component="main">
      <Title order={1} ta="center" mb="lg">
        Custodian console
      </Title>
      <Paper withBorder p="lg" radius="md">
        <form onSubmit={submit} aria-label="Sign in">
          <Stack>
            <TextInput
              label="Email"
              type="email"
              autoComplete="username"
              required
              value={email}
              onChange={(e) => setEmail(e.currentTarget.value)}
            />
            <PasswordInput
              label="Password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
            />
            <ProblemAlert error={error} title="Sign-in failed" />
            <Button type="submit" loading={sending || busy}>
              Sign in
            </Button>
            {idpHref && (
              <>
                <Divider label="or" labelPosition="center" />
                <Button component="a" href={idpHref} variant="default">
                  Sign in with your identity provider
                </Button>
              </>
            )}
          </Stack>
        </form>
      </Paper>
    </Container>
  );
}
