export * from './generated';
export { CustodianApiError, type CallOptions, type ClientOptions, type OperationInfo } from './runtime';
import { GeneratedClient } from './generated';

/**
 * The typed client of the Custodian REST API (generated from /api/v1/openapi.json, docs/api.md):
 *
 *   const api = new CustodianClient({ baseUrl: 'http://127.0.0.1:3000' });
 *   const { accessToken } = await api.authLogin({ body: { email, password } });
 *   const users = await api.withToken(accessToken).usersList({ query: { limit: '20' } });
 */
export class CustodianClient extends GeneratedClient {}
