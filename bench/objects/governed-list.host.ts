/**
 * The governed side of the governed-list bench, in a process of its own (forked by
 * governed-list.bench.ts through scripts/run-ts.cjs, with an IPC channel): an all-in-one started
 * from this process's environment (the parent sets it). Every side of the bench runs in such a
 * process, started the same way (the bare one is governed-list.bare.ts), so no side shares an
 * event loop, a heap, a garbage collector, background timers or V8's feedback with another, and
 * each side's CPU time per request is its own.
 * Messages: governed-list.ipc.ts.
 */
import { startAllInOne } from '../../all-in-one/all-in-one';
import { serveBenchMessages } from './governed-list.ipc';

async function main(): Promise<void> {
  const host = await startAllInOne(process.env);
  serveBenchMessages(host.url, () => host.stop());
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
