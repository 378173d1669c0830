import { randomBytes } from 'node:crypto';
import { InProcessBus, NatsBus, type Bus } from '@custodian/platform';
import pino from 'pino';

/** One bus "network" for a contract suite: each open() is another process's bus on it. */
export interface Transport {
  open(): Promise<Bus>;
  close(): Promise<void>;
}

const logger = pino({ level: 'silent' });

/** All-in-one: one in-process bus shared by every "process". */
export function inProcessTransport(): Transport {
  let bus: InProcessBus | undefined;
  return {
    open: async () => (bus ??= new InProcessBus(logger, { retryBaseMs: 5 })),
    close: async () => {
      await bus?.drain();
    },
  };
}

/** Distributed: a separate NATS connection per open(), in a fresh namespace whose stream is deleted on close. */
export function natsTransport(name: string): Transport {
  const namespace = `t${randomBytes(5).toString('hex')}`;
  const buses: NatsBus[] = [];
  return {
    async open() {
      const bus = await NatsBus.connect({ url: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', namespace, name, ackWaitMs: 2000 }, logger);
      buses.push(bus);
      return bus;
    },
    async close() {
      await buses[0]?.deleteStream();
      await Promise.all(buses.map((b) => b.drain()));
    },
  };
}
