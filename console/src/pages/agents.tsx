import { Alert, Badge, Button, Code, Group, Paper, Select, Stack, Text, Textarea, Title } from '@mantine/core';
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { itemsOf } from '../api/client';
import { DataTable } from '../components/data-table';
import { Empty, Link, Loading, ProblemAlert } from '../components/common';
import { useSubmit, type Item } from '../components/forms';
import { navigate } from '../lib/router';
import { useLoad } from '../lib/use-load';
import { useSession } from '../session';

interface Conversation {
  id: string;
  profileId: string;
  state: 'idle' | 'running' | 'waiting_approval' | 'failed';
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

interface Message {
  id: string;
  seq: number;
  role: 'user' | 'assistant' | 'tool' | 'notice';
  content: string;
  toolCalls?: Array<{ id: string; name: string; arguments: string }>;
  toolCallId?: string;
  toolName?: string;
  pendingActionId?: string;
  pendingState?: string;
}

/** Conversations with the built-in agent: the caller's own, and starting one with a profile. */
export function AgentsPage(): ReactNode {
  const { api } = useSession();
  const conversations = useLoad(async () => itemsOf<Conversation>(await api.client.conversationsList()), [api]);
  const profiles = useLoad(async () => itemsOf<Item>(await api.client.agentProfilesList()), [api]);
  const start = useSubmit();
  const [profileId, setProfileId] = useState<string | null>(null);
  const profileName = (id: string): string => String(profiles.data?.find((p) => p.id === id)?.name ?? id);
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    await start.run(async () => {
      const res = await api.client.conversationsStart({ body: { profileId } });
      navigate(`/agents/${res.id}`);
    });
  };
  return (
    <Stack>
      <Title order={1} size="h3">
        Agents
      </Title>
      <form onSubmit={submit} aria-label="Start conversation">
        <Group align="flex-end">
          <Select
            label="Agent profile"
            required
            data={(profiles.data ?? []).map((p) => ({ value: String(p.id), label: String(p.name) }))}
            value={profileId}
            onChange={setProfileId}
          />
          <Button type="submit" disabled={!profileId} loading={start.busy}>
            Start conversation
          </Button>
        </Group>
      </form>
      <ProblemAlert error={start.error} title="The conversation was not started" />
      <ProblemAlert error={profiles.error} title="Agent profiles could not be loaded" />
      {profiles.data && profiles.data.length === 0 ? (
        <Empty>No agent profile yet: an administrator creates one under Agent profiles.</Empty>
      ) : null}
      <Title order={2} size="h4">
        Your conversations
      </Title>
      {conversations.loading && !conversations.data ? <Loading /> : null}
      <ProblemAlert error={conversations.error} title="Conversations could not be loaded" />
      {conversations.data && conversations.data.length === 0 ? <Empty>No conversations yet.</Empty> : null}
      {conversations.data && conversations.data.length > 0 ? (
        <DataTable
          caption="Your conversations"
          rows={conversations.data as unknown as Item[]}
          rowKey={(r) => String(r.id)}
          columns={[
            { id: 'updatedAt', header: 'Last activity', render: (r) => <Link to={`/agents/${String(r.id)}`}>{String(r.updatedAt)}</Link> },
            { id: 'profileId', header: 'Agent', render: (r) => profileName(String(r.profileId)) },
            { id: 'state', header: 'State' },
          ]}
        />
      ) : null}
    </Stack>
  );
}

/**
 * One conversation: its messages with every tool call and pending action inline (state and a link
 * to the approval); sending streams the turn over Server-Sent Events; while an action waits for
 * approval the page follows the conversation's live events (and re-reads it) until the agent resumes.
 */
export function ConversationPage({ id }: { id: string }): ReactNode {
  const { api } = useSession();
  // The conversation's answer is an open object in the API's schema: the page names what it reads.
  const loaded = useLoad(async (): Promise<Conversation & { messages: Message[] }> => {
    const answer: unknown = await api.client.conversationsGet({ id });
    return answer as Conversation & { messages: Message[] };
  }, [api, id]);
  const [messages, setMessages] = useState<Message[]>([]);
  const [state, setState] = useState<string>();
  const [draft, setDraft] = useState('');
  const [streaming, setStreaming] = useState('');
  const send = useSubmit();
  const live = useRef(true);

  useEffect(() => {
    if (loaded.data) {
      setMessages(loaded.data.messages);
      setState(loaded.data.state);
    }
  }, [loaded.data]);
  useEffect(() => {
    live.current = true;
    return () => {
      live.current = false;
    };
  }, []);
  // Besides the live events: while an action waits for approval (or a resumed turn runs), re-read
  // every 3 s, so a dropped event stream (a proxy timeout) cannot leave the page stale.
  useEffect(() => {
    if (send.busy || (state !== 'waiting_approval' && state !== 'running')) return;
    const timer = setInterval(() => loaded.reload(), 3000);
    return () => clearInterval(timer);
  }, [state, send.busy]);

  /** One event of the conversation (from the turn's own stream or the live events stream). */
  const onEvent = (event: string, data: unknown): void => {
    if (!live.current) return;
    const d = data as Record<string, unknown>;
    if (event === 'delta') setStreaming((s) => s + String(d.text ?? d.content ?? ''));
    else if (event === 'message') {
      const m = (d.message ?? d) as Message;
      setMessages((all) => (all.some((x) => x.id === m.id) ? all.map((x) => (x.id === m.id ? m : x)) : [...all, m]));
      if (m.role === 'assistant') setStreaming('');
    } else if (event === 'pending') {
      setMessages((all) => all.map((x) => (x.pendingActionId === d.pendingActionId ? { ...x, pendingState: String(d.state) } : x)));
    } else if (event === 'state') setState(String(d.state));
  };
  // Live events (a pending action decided, a resumed turn) while the page is open; the text of a
  // resumed turn arrives as its message, so deltas are taken from the turn's own stream only.
  useEffect(() => {
    const stop = new AbortController();
    void api
      .stream(`/agent/conversations/${id}/events`, undefined, (event, data) => event !== 'delta' && onEvent(event, data), {
        method: 'GET',
        signal: stop.signal,
      })
      .catch(() => undefined);
    return () => stop.abort();
    // onEvent only sets state: one subscription per conversation is intended.
  }, [api, id]);

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const content = draft.trim();
    if (!content) return;
    setStreaming('');
    await send.run(async () => {
      await api.stream(`/agent/conversations/${id}/messages`, { content }, onEvent);
      setDraft('');
    });
    setStreaming('');
    loaded.reload();
  };

  if (loaded.loading && !loaded.data) return <Loading />;
  if (loaded.error && !loaded.data) return <ProblemAlert error={loaded.error} title="This conversation cannot be shown" />;
  return (
    <Stack>
      <Title order={1} size="h3">
        Conversation
      </Title>
      <Group gap="xs">
        <Text size="sm">State:</Text>
        <Badge color="dark" variant="outline" data-testid="conversation-state">
          {state ?? '…'}
        </Badge>
        <Link to="/agents">All conversations</Link>
      </Group>
      <Stack gap="xs" aria-label="Messages" component="section" aria-live="polite">
        {messages.length === 0 ? <Empty>Say what you need; the agent acts as you, never with more access.</Empty> : null}
        {messages.map((m) => (
          <MessageView key={m.id} m={m} />
        ))}
        {streaming ? (
          <Paper withBorder p="sm" data-testid="streaming">
            <Text size="xs" fw={700}>
              Agent (writing…)
            </Text>
            <Text size="sm" style={{ whiteSpace: 'pre-wrap' }}>
              {streaming}
            </Text>
          </Paper>
        ) : null}
      </Stack>
      <ProblemAlert error={send.error} title="Not sent" />
      <form onSubmit={submit} aria-label="Send message">
        <Stack gap="xs">
          <Textarea label="Message" autosize minRows={2} value={draft} onChange={(e) => setDraft(e.currentTarget.value)} />
          <Group>
            <Button type="submit" loading={send.busy} disabled={!draft.trim()}>
              Send
            </Button>
          </Group>
        </Stack>
      </form>
    </Stack>
  );
}

function MessageView({ m }: { m: Message }): ReactNode {
  if (m.role === 'notice') {
    return (
      <Alert color="gray" variant="light" data-role="notice">
        <Text size="sm">{m.content}</Text>
      </Alert>
    );
  }
  if (m.role === 'tool') {
    return (
      <Paper withBorder p="sm" data-role="tool" bg="gray.0">
        <Group gap="xs">
          <Text size="xs" fw={700}>
            Tool result: {m.toolName ?? 'tool'}
          </Text>
          {m.pendingActionId ? (
            <>
              <Badge color="dark" variant="outline" data-testid="pending-state">
                {m.pendingState ?? 'pending'}
              </Badge>
              <Link to={`/approvals/${m.pendingActionId}`}>Open the approval</Link>
            </>
          ) : null}
        </Group>
        <Code block mt={4} tabIndex={0} aria-label={`Result of ${m.toolName ?? 'tool'}`}>
          {m.content.length > 2000 ? `${m.content.slice(0, 2000)}…` : m.content}
        </Code>
      </Paper>
    );
  }
  return (
    <Paper withBorder p="sm" data-role={m.role}>
      <Text size="xs" fw={700}>
        {m.role === 'user' ? 'You' : 'Agent'}
      </Text>
      {m.content ? (
        <Text size="sm" style={{ whiteSpace: 'pre-wrap' }}>
          {m.content}
        </Text>
      ) : null}
      {m.toolCalls?.map((c) => (
        <Text key={c.id} size="xs" data-testid="tool-call">
          Calls <Code>{c.name}</Code> with <Code>{c.arguments.length > 300 ? `${c.arguments.slice(0, 300)}…` : c.arguments}</Code>
        </Text>
      ))}
    </Paper>
  );
}
