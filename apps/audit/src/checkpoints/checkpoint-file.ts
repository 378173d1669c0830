/**
 * The `--checkpoint` file of `custodian audit verify --offline`: the body of GET audit/checkpoints
 * as it is answered now (`{items, nextCursor, publicKeys}`, the one list envelope of ADR 0018) or
 * was answered before (`{publicKeys, checkpoints}`), or a single checkpoint object. Each checkpoint
 * is still checked (shape, key, signature) by checkCheckpoint; this only finds them in the file.
 */
export interface CheckpointFile {
  checkpoints: unknown[];
  /** The keys the file names (trusted only when no key is pinned); undefined unless a list of strings. */
  publicKeys: string[] | undefined;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function readCheckpointFile(doc: unknown): CheckpointFile {
  if (!isPlainObject(doc)) throw new Error('the checkpoint file must hold an object (the body of GET audit/checkpoints)');
  const publicKeys = Array.isArray(doc.publicKeys) && doc.publicKeys.every((k) => typeof k === 'string') ? doc.publicKeys : undefined;
  const hasItems = 'items' in doc;
  const hasCheckpoints = 'checkpoints' in doc;
  // A file with two lists would verify one and silently ignore the other.
  if (hasItems && hasCheckpoints) throw new Error('the checkpoint file has both items and checkpoints');
  if (!hasItems && !hasCheckpoints) return { checkpoints: [doc], publicKeys };
  const list = hasItems ? doc.items : doc.checkpoints;
  if (!Array.isArray(list)) throw new Error(`the checkpoint file's ${hasItems ? 'items' : 'checkpoints'} must be a list`);
  return { checkpoints: list, publicKeys };
}
