export interface PendingAction {
  id: string;
  state?: string;
  kind?: string;
}

/** The pending action in an answer, if the change was caught by an approval policy. */
export function pendingOf(status: number, body: unknown): PendingAction | undefined {
  if (status !== 202 || !body || typeof body !== 'object') return undefined;
  const b = body as { pendingAction?: PendingAction; id?: string; state?: string; kind?: string };
  if (b.pendingAction?.id) return b.pendingAction;
  return b.id && b.state ? { id: b.id, state: b.state, kind: b.kind } : undefined;
}
