import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Every capability a key may carry (SYSTEM_CAPABILITIES + INTEGRATION_CAPABILITIES when this shipped). */
const CAPABILITIES = [
  'manage_users',
  'manage_roles',
  'manage_permissions',
  'manage_metadata',
  'manage_sharing',
  'manage_settings',
  'manage_api_keys',
  'view_audit',
  'manage_audit',
  'approve_actions',
  'view_all_data',
  'modify_all_data',
  'api_access',
  'agent_access',
  'mcp_access',
];

/**
 * Data only: an API key's stored scopes become the whole truth about what it carries. Until now an
 * empty list meant "every capability of the user"; from now on it means none. So that no live key
 * changes at the upgrade, each live key stored without scopes gets the capabilities its user holds
 * in its org at this moment (direct membership capabilities and permission sets, directly or
 * through groups: what the principal snapshot counted), written out explicitly. The key no longer
 * follows capabilities the user gains later. Revoked keys are left alone; they are never used again.
 */
export class ApiKeyExplicitScopes1795400000000 implements MigrationInterface {
  name = 'ApiKeyExplicitScopes1795400000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      `UPDATE api_key k SET scopes = COALESCE((
         SELECT array_agg(caps.c ORDER BY caps.c COLLATE "C")
           FROM (
             SELECT unnest(m.capabilities) AS c
               FROM membership m WHERE m.user_id = k.user_id AND m.org_id = k.org_id
             UNION
             SELECT jsonb_array_elements_text(
                      COALESCE(ps.body -> 'systemCapabilities', '[]'::jsonb) || COALESCE(ps.body -> 'integrationCapabilities', '[]'::jsonb))
               FROM permission_set ps
              WHERE ps.org_id = k.org_id AND EXISTS (
                SELECT 1 FROM permission_set_assignment a
                 WHERE a.permission_set_id = ps.id AND a.org_id = k.org_id
                   AND (a.user_id = k.user_id
                        OR a.group_id IN (SELECT g.group_id FROM group_member g WHERE g.org_id = k.org_id AND g.user_id = k.user_id)))
           ) caps
          WHERE caps.c = ANY($1::text[])
       ), '{}')
       WHERE cardinality(k.scopes) = 0 AND k.revoked_at IS NULL`,
      [CAPABILITIES],
    );
  }

  /** Nothing to undo: an explicit list means the same under the old reading (a non-empty list narrowed to itself). */
  async down(): Promise<void> {}
}
