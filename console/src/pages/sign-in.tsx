import { Button, Container, Paper, PasswordInput, Stack, TextInput, Title } from '@mantine/core';
import { useState, type FormEvent, type ReactNode } from 'react';
import { ProblemAlert } from '../components/common';

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
          </Stack>
        </form>
      </Paper>
    </Container>
  );
}
