/**
 * The server side of the governed-list bench's IPC channel (governed-list.host.ts and
 * governed-list.bare.ts): {ready, url} once listening; 'cpu' → {cpu: process.cpuUsage()}; 'stop' →
 * stop (pools closed), then exit.
 */
export function serveBenchMessages(url: string, stop: () => Promise<void>): void {
  if (!process.send) throw new Error('a bench server runs as a forked child of governed-list.bench.ts');
  process.on('message', (message) => {
    if (message === 'cpu') process.send!({ cpu: process.cpuUsage() });
    if (message === 'stop')
      void stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
  process.send({ ready: true, url });
}
