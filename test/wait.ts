/** Polls `check` until it returns a truthy value (returned) or `timeoutMs` passes (throws with `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 15_000, everyMs = 20): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Applies every outbox entry of an event to Postgres (what the persist worker does), until none is left. */
export async function drain(
  engine: { outbox: { read(e: never, n: number): Promise<{ id: string }[]>; ack(e: never, ids: string[]): Promise<void> }; applyOutbox(e: never[]): Promise<unknown> },
  eventId: string,
): Promise<number> {
  let total = 0;
  for (;;) {
    const entries = await engine.outbox.read(eventId as never, 500);
    if (entries.length === 0) return total;
    await engine.applyOutbox(entries as never[]);
    await engine.outbox.ack(eventId as never, entries.map((e) => e.id));
    total += entries.length;
  }
}
