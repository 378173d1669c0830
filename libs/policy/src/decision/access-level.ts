/** Record access levels of R4, ordered. */
export const ACCESS_LEVELS = ['none', 'read', 'edit', 'full'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

export const LEVEL = { none: 0, read: 1, edit: 2, full: 3 } as const;
export type LevelRank = 0 | 1 | 2 | 3;

export function levelName(rank: number): AccessLevel {
  return ACCESS_LEVELS[Math.max(0, Math.min(3, rank))];
}

/** Actions on an object type. `share` = manage a record's shares. */
export const OBJECT_ACTIONS = ['read', 'create', 'edit', 'delete', 'transfer', 'share'] as const;
export type ObjectAction = (typeof OBJECT_ACTIONS)[number];
/** Actions on an existing record. */
export type RecordAction = Exclude<ObjectAction, 'create'>;

export function isObjectAction(value: unknown): value is ObjectAction {
  return typeof value === 'string' && (OBJECT_ACTIONS as readonly string[]).includes(value);
}

/** The record access level an action needs (R4): read ≥ read, edit ≥ edit, delete/transfer/share = full. */
export function requiredLevel(action: RecordAction): LevelRank {
  switch (action) {
    case 'read':
      return 1;
    case 'edit':
      return 2;
    default:
      return 3;
  }
}
