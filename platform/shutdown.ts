/** Ordered shutdown: handlers run last-registered first, each once, on SIGINT/SIGTERM or on demand. */
export function createShutdown(log: (msg: string) => void = () => {}) {
  const handlers: { name: string; fn: () => Promise<unknown> | unknown }[] = [];
  let running: Promise<void> | undefined;
  const run = (): Promise<void> =>
    (running ??= (async () => {
      for (const h of handlers.reverse()) {
        try {
          await h.fn();
        } catch (err) {
          log(`shutdown: ${h.name} failed: ${(err as Error).message}`);
        }
      }
    })());
  return {
    add(name: string, fn: () => Promise<unknown> | unknown) {
      handlers.push({ name, fn });
    },
    run,
    listen() {
      for (const sig of ['SIGINT', 'SIGTERM'] as const) {
        process.once(sig, () => {
          log(`${sig} received, shutting down`);
          void run().then(() => process.exit(0));
        });
      }
    },
  };
}
