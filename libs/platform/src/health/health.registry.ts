/** Readiness checks contributed by the modules a process hosts (each service's database, the bus). */
export class HealthRegistry {
  private readonly checks = new Map<string, () => Promise<void>>();
  private shuttingDown = false;

  register(name: string, check: () => Promise<void>): void {
    this.checks.set(name, check);
  }

  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  async readiness(timeoutMs = 1500): Promise<{ ready: boolean; checks: Record<string, 'ok' | 'failing'> }> {
    const results: Record<string, 'ok' | 'failing'> = {};
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([check(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs)))]);
          results[name] = 'ok';
        } catch {
          results[name] = 'failing';
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    if (this.shuttingDown) results.shutdown = 'failing';
    return { ready: Object.values(results).every((r) => r === 'ok'), checks: results };
  }
}
