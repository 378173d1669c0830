import { randomUUID } from 'node:crypto';
import { AuthenticateApiKey, ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import pino from 'pino';
import { InProcessBus } from '../bus/in-process.bus';
import { CustodianException } from '../errors/custodian.exception';
import { PrincipalResolver } from './principal-resolver';

// A credential that breaks the bus contract is the caller's problem, not an upstream fault: the
// guard has not authenticated anyone yet, so the answer is the 401 of any refused credential.

const logger = pino({ level: 'silent' });
const GOOD_KEY = `cak_0123456789abcdef_${'A'.repeat(43)}`;

async function resolverWith(reply: (key: string) => Promise<PrincipalSnapshot>): Promise<{ resolver: PrincipalResolver; asked: string[] }> {
  const bus = new InProcessBus(logger);
  const asked: string[] = [];
  await bus.handle(AuthenticateApiKey, async (req) => {
    asked.push(req.key);
    return reply(req.key);
  });
  return { resolver: new PrincipalResolver(bus, { issuer: 'urn:i', audience: 'urn:a', clockToleranceSeconds: 0 }, logger), asked };
}

async function refusal(promise: Promise<unknown>): Promise<CustodianException> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CustodianException);
  return error as CustodianException;
}

describe('PrincipalResolver: malformed API keys', () => {
  it('refuses keys that cannot be keys without asking identity, exactly like a wrong key', async () => {
    const { resolver, asked } = await resolverWith(async () => {
      throw CustodianException.unauthenticated('no such key');
    });
    const wrong = await refusal(resolver.resolveBearer(GOOD_KEY));
    expect(asked).toEqual([GOOD_KEY]);
    for (const key of [`cak_${'a'.repeat(300)}`, `cak_${'a'.repeat(253)}`, 'cak_', 'cak_a.b', 'cak_a/b+c=']) {
      const error = await refusal(resolver.resolveBearer(key));
      expect([error.code, error.message]).toEqual([wrong.code, wrong.message]);
      expect(error.code).toBe(ErrorCode.Unauthenticated);
    }
    expect(asked).toEqual([GOOD_KEY]);
    // The longest key the request contract takes still goes to identity.
    await refusal(resolver.resolveBearer(`cak_${'a'.repeat(252)}`));
    expect(asked).toHaveLength(2);
  });

  it('a reply that breaks its contract is a 401 for the unauthenticated caller, not a 502', async () => {
    const { resolver } = await resolverWith(async () => ({ userId: 'not-a-uuid', orgId: randomUUID() }) as unknown as PrincipalSnapshot);
    const error = await refusal(resolver.resolveBearer(GOOD_KEY));
    expect(error.code).toBe(ErrorCode.Unauthenticated);
  });
});
