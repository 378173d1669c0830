import { createContext, useContext } from 'react';
import type { ApiClient } from './api/client';
import type { ObjectMeta } from './lib/records';

export interface Me {
  userId: string;
  orgId: string;
  email: string;
  capabilities: string[];
  roleId?: string | null;
  groupIds?: string[];
  permissionSets?: Array<{
    name: string;
    objects?: Record<string, Record<string, boolean>>;
    fields?: Record<string, Record<string, string>>;
  }>;
  agent?: unknown;
}

export interface Session {
  api: ApiClient;
  me: Me;
  objects: ObjectMeta[];
  signOut: () => void;
}

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in page');
  return s;
}

export function can(me: Me, capability: string): boolean {
  return me.capabilities.includes(capability);
}
