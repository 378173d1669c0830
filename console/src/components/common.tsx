import { Alert, Anchor, Center, Code, Loader, Stack, Text } from '@mantine/core';
import type { MouseEvent, ReactNode } from 'react';
import { asApiError } from '../api/problem';
import { BASE, navigate } from '../lib/router';

/** A problem+json error, always with its code and request id so a support ticket can quote them. */
export function ProblemAlert({ error, title }: { error: unknown; title?: string }): ReactNode {
  if (!error) return null;
  const e = asApiError(error);
  return (
    <Alert color="red" title={title ?? 'Something went wrong'} role="alert" variant="light">
      <Stack gap={4}>
        <Text size="sm">{e?.detail ?? (error instanceof Error ? error.message : String(error))}</Text>
        <Text size="sm">
          Code: <Code data-testid="problem-code">{e?.code ?? 'client_error'}</Code>
          {e?.requestId ? (
            <>
              {' '}
              · Request id: <Code data-testid="problem-request-id">{e.requestId}</Code>
            </>
          ) : null}
        </Text>
      </Stack>
    </Alert>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }): ReactNode {
  return (
    <Center py="lg" role="status" aria-live="polite">
      <Loader size="sm" aria-hidden />
      <Text ml="sm">{label}</Text>
    </Center>
  );
}

export function Empty({ children }: { children: ReactNode }): ReactNode {
  return (
    <Text py="md" role="status">
      {children}
    </Text>
  );
}

/** An in-app link: a real href (open in a new tab works) that navigates without a reload. */
export function Link({ to, children, ...rest }: { to: string; children: ReactNode; 'aria-label'?: string }): ReactNode {
  const onClick = (e: MouseEvent<HTMLAnchorElement>): void => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <Anchor href={`${BASE}${to}`} onClick={onClick} {...rest}>
      {children}
    </Anchor>
  );
}
