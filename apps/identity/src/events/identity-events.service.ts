import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import {
  CredentialRevoked,
  DirectoryChanged,
  PolicyVersionChanged,
  type CredentialRevokedEvent,
  type DirectoryChange,
  type EventContract,
} from '@custodian/contracts';
import { BUS, CustodianException, LOGGER, SERVICE_DATA_SOURCE, uuidv7, validate, type Bus } from '@custodian/platform';
import { ErrorCode } from '@custodian/contracts';
import type { Logger } from 'pino';
import type { DataSource, EntityManager } from 'typeorm';

const CONTRACTS: ReadonlyMap<string, EventContract> = new Map(
  [PolicyVersionChanged, DirectoryChanged, CredentialRevoked].map((c) => [c.subject, c as EventContract]),
);
const SWEEP_MS = 1000;

/**
 * The events identity owes other services (policy version, directory changes, revocations). They
 * are written to identity's own event table in the change's transaction, so a committed change
 * always has its event, and published right after commit; a periodic sweep republishes anything a
 * crash left behind. JetStream de-duplicates by the row id (message id).
 */
@Injectable()
export class IdentityEvents implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Events appended so far; a transaction that appended none skips the flush query. */
  private appended = 0;
  /** Per transaction: the versions announced with `directoryChange: false` (see policyChanged). */
  private readonly nonDirectory = new WeakMap<EntityManager, Set<string>>();

  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.flush(), SWEEP_MS);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.flushing;
  }

  /** Runs `fn` in one transaction, then publishes the events it recorded. */
  async transaction<T>(fn: (m: EntityManager) => Promise<T>): Promise<T> {
    const before = this.appended;
    const result = await this.ds.transaction(fn);
    if (this.appended !== before) await this.flush();
    return result;
  }

  /** Runs a read outside any transaction (keeps services on one collaborator for the database). */
  read<T>(fn: (m: EntityManager) => Promise<T>): Promise<T> {
    return fn(this.ds.manager);
  }

  /**
   * Bumps the org's policy version (R10) and records PolicyVersionChanged; returns the new version.
   * `directoryChange` says whether the caller records a directory event at this version too (the
   * objects replica waits for it exactly then); `directory()` refuses an event at a version that
   * was announced without one.
   */
  async policyChanged(m: EntityManager, orgId: string, reason: string, directoryChange: boolean): Promise<number> {
    const rows: Array<{ v: string }> = await m.query(
      'WITH u AS (UPDATE organization SET policy_version = policy_version + 1 WHERE id = $1 RETURNING policy_version) SELECT policy_version AS v FROM u',
      [orgId],
    );
    const policyVersion = Number(rows[0].v);
    await this.append(m, PolicyVersionChanged, { orgId, policyVersion, reason: reason.slice(0, 64), directoryChange });
    if (!directoryChange) this.withoutDirectory(m).add(`${orgId}:${policyVersion}`);
    return policyVersion;
  }

  /** Records one directory change with the org's next directory sequence number. */
  async directory(m: EntityManager, orgId: string, policyVersion: number, change: DirectoryChange): Promise<void> {
    if (this.withoutDirectory(m).has(`${orgId}:${policyVersion}`))
      throw new CustodianException(ErrorCode.Internal, `Policy version ${policyVersion} was announced without a directory change`);
    const rows: Array<{ s: string }> = await m.query(
      'WITH u AS (UPDATE organization SET directory_seq = directory_seq + 1 WHERE id = $1 RETURNING directory_seq) SELECT directory_seq AS s FROM u',
      [orgId],
    );
    const eventId = uuidv7();
    await this.append(m, DirectoryChanged, { eventId, orgId, seq: Number(rows[0].s), policyVersion, change }, eventId);
  }

  private withoutDirectory(m: EntityManager): Set<string> {
    let set = this.nonDirectory.get(m);
    if (!set) this.nonDirectory.set(m, (set = new Set()));
    return set;
  }

  async revoked(m: EntityManager, event: Omit<CredentialRevokedEvent, 'eventId'>): Promise<void> {
    if (event.ids.length === 0) return;
    const eventId = uuidv7();
    await this.append(m, CredentialRevoked, { eventId, ...event }, eventId);
  }

  /** Publishes unpublished events in commit order; safe to call concurrently and from replicas. */
  flush(): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      try {
        do {
          this.again = false;
          await this.publishBatch();
        } while (this.again && !this.stopped);
      } catch (error) {
        this.logger.warn({ err: error }, 'identity event publish failed; the sweep retries');
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** Refuses (and so rolls back the change) rather than store an event that could never be published. */
  private async append<E extends EventContract>(
    m: EntityManager,
    contract: E,
    payload: E['payload']['static'],
    id = uuidv7(),
  ): Promise<void> {
    const check = validate(contract.payload, payload);
    if (!check.ok)
      throw new CustodianException(ErrorCode.Internal, `Event ${contract.subject} does not match its contract`, { issues: check.issues });
    this.appended++;
    await m.query('INSERT INTO identity_event (id, subject, payload) VALUES ($1, $2, $3::jsonb)', [
      id,
      contract.subject,
      JSON.stringify(payload),
    ]);
  }

  private async publishBatch(): Promise<void> {
    if (!this.ds.isInitialized) return;
    for (;;) {
      const sent = await this.ds.transaction(async (m) => {
        const rows: Array<{ id: string; subject: string; payload: Record<string, unknown> }> = await m.query(
          'SELECT id, subject, payload FROM identity_event WHERE published_at IS NULL ORDER BY seq LIMIT 200 FOR UPDATE SKIP LOCKED',
        );
        const done: string[] = [];
        for (const row of rows) {
          const contract = CONTRACTS.get(row.subject);
          const check = contract ? validate(contract.payload, row.payload) : undefined;
          if (!contract || !check?.ok) {
            // A poison row must not block the stream behind it; it stays in the table for inspection.
            this.logger.error(
              { eventId: row.id, subject: row.subject, issues: check?.ok === false ? check.issues : undefined },
              'unpublishable identity event skipped',
            );
            done.push(row.id);
            continue;
          }
          await this.bus.publish(contract, row.payload as never, { messageId: row.id });
          done.push(row.id);
        }
        if (done.length > 0) await m.query('UPDATE identity_event SET published_at = now() WHERE id = ANY($1::uuid[])', [done]);
        return rows.length;
      });
      if (sent < 200) return;
    }
  }
}
