import type { apiClient } from './api';

type Api = ReturnType<typeof apiClient>;

/**
 * `deal`, a master-detail child of an existing `account` (controlled by its parent), and a
 * permission set "All" with every right on both, assigned to the caller itself.
 */
export async function defineDealsWithFullAccess({ call, ok }: Api, token: string): Promise<void> {
  await ok(
    call('POST', '/meta/objects', token, {
      name: 'deal',
      label: 'Deal',
      sharingModel: 'controlled_by_parent',
      fields: [
        { name: 'title', type: 'text' },
        { name: 'account_id', type: 'master_detail', reference: 'account' },
      ],
    }),
    201,
  );
  const all = { allowRead: true, allowCreate: true, allowEdit: true, allowDelete: true, viewAllRecords: true, modifyAllRecords: true };
  const set = await ok(call('POST', '/permission-sets', token, { name: 'All', objects: { account: all, deal: all } }), 201);
  const me = await ok(call('GET', '/auth/me', token));
  await ok(call('POST', `/permission-sets/${set.id}/assignments`, token, { userId: me.userId }), 201);
}
