/**
 * Request bodies as Okta and Microsoft Entra ID send them, after the examples in their public
 * documentation:
 *  - Okta: "Okta and SCIM Version 2.0" (developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20)
 *  - Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint", request/response
 *    examples (learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups)
 * Ids the server assigns are filled in by the functions. Entra ID also sends booleans as strings
 * ("False") when the app is not flagged for SCIM compliance; `entraDisableUserString` is that form.
 */
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export const oktaCreateUser = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  userName: 'test.user@okta.local',
  name: { givenName: 'Test', familyName: 'User' },
  emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
  displayName: 'Test User',
  locale: 'en-US',
  externalId: '00ujl29u0le5T6Aj10h7',
  groups: [],
  password: '1mz050nq',
  active: true,
};

export const oktaUserFilter = 'userName eq "test.user@okta.local"';

export const oktaReplaceUser = (id: string): Record<string, unknown> => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  id,
  userName: 'test.user@okta.local',
  name: { givenName: 'Another', familyName: 'User' },
  emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
  displayName: 'Another User',
  locale: 'en-US',
  externalId: '00ujl29u0le5T6Aj10h7',
  groups: [],
  active: true,
  meta: { resourceType: 'User' },
});

export const oktaDeactivateUser = { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: false } }] };

export const oktaCreateGroup = { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Test SCIMv2', members: [] };

export const oktaRenameGroup = (id: string): Record<string, unknown> => ({
  schemas: [PATCH_OP],
  Operations: [{ op: 'replace', value: { id, displayName: 'Test SCIMv2 renamed' } }],
});

export const oktaAddMembers = (userId: string): Record<string, unknown> => ({
  schemas: [PATCH_OP],
  Operations: [{ op: 'add', path: 'members', value: [{ value: userId, display: 'test.user@okta.local' }] }],
});

export const oktaRemoveMember = (userId: string): Record<string, unknown> => ({
  schemas: [PATCH_OP],
  Operations: [{ op: 'remove', path: `members[value eq "${userId}"]` }],
});

export const entraCreateUser = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
  externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
  userName: 'Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1',
  active: true,
  emails: [{ primary: true, type: 'work', value: 'Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com' }],
  meta: { resourceType: 'User' },
  name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
  roles: [],
};

export const entraUserFilter = 'userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"';

export const entraUpdateUser = {
  schemas: [PATCH_OP],
  Operations: [
    { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@microsoft.com' },
    { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
  ],
};

/** Entra ID's default attribute mapping also sends attributes Custodian does not keep. */
export const entraUpdateUnkeptAttributes = {
  schemas: [PATCH_OP],
  Operations: [
    { op: 'Add', path: 'title', value: 'Engineer' },
    { op: 'Add', path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department', value: 'Identity' },
    { op: 'Replace', path: 'displayName', value: 'Updated Name' },
  ],
};

export const entraDisableUser = { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: false }] };
export const entraDisableUserString = { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] };

export const entraCreateGroup = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group', 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group'],
  externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
  displayName: 'displayName',
  meta: { resourceType: 'Group' },
};

export const entraGroupFilter = 'displayName eq "displayName"';

export const entraUpdateGroupName = {
  schemas: [PATCH_OP],
  Operations: [{ op: 'Replace', path: 'displayName', value: '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName' }],
};

export const entraAddMember = (userId: string): Record<string, unknown> => ({
  schemas: [PATCH_OP],
  Operations: [{ name: 'addMember', op: 'add', path: 'members', value: [{ $ref: null, value: userId }] }],
});

export const entraRemoveMember = (userId: string): Record<string, unknown> => ({
  schemas: [PATCH_OP],
  Operations: [{ name: 'removeMember', op: 'remove', path: 'members', value: [{ $ref: null, value: userId }] }],
});
