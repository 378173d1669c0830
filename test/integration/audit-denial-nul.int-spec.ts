import { MetricsService } from '@custodian/platform';
import { Client } from 'pg';
import { apiClient } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

/**
 * A refusal whose details carry NUL (jsonb refuses `\u0000`) or other control characters is still
 * audited: the outbox writer writes such characters as visible `\uXXXX` text before the insert.
 */
describe('a denial with control characters in its details is audited', () => {
  let t: TestHost;
  let pg: Client;
  let token: string;
  const { call } = apiClient(() => t.host.url);

  beforeAll(async () => {
    t = await startTestHost('denial_nul');
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    token = (await login(t.host.url)).accessToken;
  });

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
  });

  it('GET /data/opportunity%00 is refused and its authz.denied event is in the outbox, encoded; nothing unrecorded', async () => {
    const res = await call('GET', '/data/opportunity%00', token);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const rows = await pollUntil(
      async () => {
        const r = await pg.query<{ payload: { target: { type: string }; details: Record<string, unknown> } }>(
          `SELECT payload FROM objects.outbox WHERE payload->>'action' = 'authz.denied' AND payload->'target'->>'type' LIKE 'opportunity%'`,
        );
        return r.rows.length > 0 ? r.rows : undefined;
      },
      { what: 'the denial in the objects outbox' },
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].payload.target.type).toBe('opportunity\\u0000');
    expect(rows[0].payload.details).toMatchObject({ reason: 'object_not_found' });
    const metrics = t.host.app.get(MetricsService);
    expect(await metrics.registry.getSingleMetricAsString('custodian_audit_denials_unrecorded_total')).not.toMatch(/} [1-9]/);
  });
});
