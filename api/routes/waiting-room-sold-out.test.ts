import { pino } from 'pino';
import type { QueueStatus, TierId, UserId } from '../../engine/index.js';
import { seatedEvent } from '../../test/events.js';
import { describe, expect, it } from '../../test/fixtures.js';
import { startApi, token, type TestApi } from '../../test/http.js';
import { waitFor } from '../../test/wait.js';
import { createAdmissionWorker } from '../../workers/admission/admission.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

/** A browser tab on the status stream: every status message, with the time it arrived. */
function listen(api: TestApi, queueId: string, bearer: string, onStatus: (s: QueueStatus) => void) {
  const ctl = new AbortController();
  const seen: { at: number; status: QueueStatus }[] = [];
  const done = (async () => {
    const res = await fetch(`${api.url}/api/queue/${queueId}/events?access_token=${bearer}`, { signal: ctl.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const text = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) return;
      buf += text.decode(value, { stream: true });
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const msg = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = /^data: (.*)$/m.exec(msg)?.[1];
        if (!/^event: status$/m.test(msg) || !data) continue;
        const status = JSON.parse(data) as QueueStatus;
        seen.push({ at: performance.now(), status });
        onStatus(status);
      }
    }
  })().catch((e: unknown) => {
    if ((e as Error).name !== 'AbortError') throw e;
  });
  return { seen, close: () => ctl.abort(), done };
}

// its own file: the admission worker admits for every event of the namespace
describe('the end of a sale, end to end (real API, admission worker and status streams)', () => {
  it('with 3 scattered free seats and 100 people in line, three buyers who want 1 seat each get them, and everyone else is told sold_out within 2 s', async ({ engine, clock, onTestFinished }) => {
    clock.set(T0);
    const ev = await engine.createEvent({
      ...seatedEvent([{ id: 'A', rows: 1, seatsPerRow: 5 }]), salesOpenAt: new Date(T0 - 1000).toISOString(), maxTicketsPerUser: 4,
      queue: { enabled: true, opensAt: new Date(T0 - 60_000).toISOString(), admissionRatePerSecond: 100, passTtlSeconds: 120 },
    });
    const tierId = ev.tiers[0]!.id as TierId;
    // the first buyer takes seats 2 and 4: seats 1, 3 and 5 are left, none beside another
    const first = u('first');
    const firstPlace = await engine.waitingRoom.join(ev.id, first);
    expect((await engine.waitingRoom.admit(ev.id, 1))!.admitted).toBe(1);
    const firstPass = (await engine.waitingRoom.status(firstPlace.status.queueId, first)).admissionToken;
    await engine.bookings.create({ userId: first, eventId: ev.id, tierId, ticketCount: 2, seatPreferences: { seatIds: ['A-1-2', 'A-1-4'] }, admissionToken: firstPass });

    const line = Array.from({ length: 100 }, (_, i) => u(`fan-${i}`));
    const places: { who: UserId; bearer: string; queueId: string }[] = [];
    for (const who of line) places.push({ who, bearer: await token(who), queueId: (await engine.waitingRoom.join(ev.id, who)).status.queueId }); // in this order
    const api = await startApi(engine);
    const worker = createAdmissionWorker({ engine, log: pino({ level: 'silent' }), tickMs: 100 });
    const tabs: ReturnType<typeof listen>[] = [];
    onTestFinished(async () => {
      await worker.stop();
      for (const t of tabs) t.close();
      await api.close();
    });

    // each admitted buyer holds one seat at once, as "best available, not together"
    const holds: Promise<{ status: number; json: Record<string, unknown> }>[] = [];
    const admitted: QueueStatus[] = [];
    for (const p of places) {
      tabs.push(
        listen(api, p.queueId, p.bearer, (s) => {
          if (s.status !== 'admitted' || !s.admissionToken) return;
          admitted.push(s);
          holds.push(
            api.call('POST', '/api/bookings', {
              token: p.bearer,
              body: { eventId: ev.id, tierId, ticketCount: 1, seatPreferences: { adjacent: false } },
              headers: { 'x-admission-token': s.admissionToken, 'idempotency-key': `hold-${p.who}` },
            }) as Promise<{ status: number; json: Record<string, unknown> }>,
          );
        }),
      );
    }
    await waitFor('every tab has its first status', () => tabs.every((t) => t.seen.length > 0) || null);
    expect(tabs.every((t) => t.seen[0]!.status.status === 'waiting')).toBe(true);

    const start = performance.now();
    worker.start();
    const soldOutAt = (t: (typeof tabs)[number]) => t.seen.find((m) => m.status.status === 'sold_out')?.at;
    await waitFor('three holds made and everyone else told sold_out', async () =>
      holds.length === 3 && (await Promise.all(holds)).length === 3 && tabs.filter((t) => soldOutAt(t) !== undefined).length === 97 ? true : null,
    10_000);

    // the first three in line were admitted with passes for one single seat each, and each got one
    expect(admitted.map((s) => s.queueId).sort()).toEqual(places.slice(0, 3).map((p) => p.queueId).sort());
    for (const s of admitted) expect([s.passTickets, s.singleSeatsOnly]).toEqual([1, true]);
    const answers = await Promise.all(holds);
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201]);
    expect(answers.flatMap((a) => a.json.seats as string[]).sort()).toEqual(['A-1-1', 'A-1-3', 'A-1-5']);
    expect((await engine.inventory.redisState(ev.id))[tierId]).toMatchObject({ free: 0, held: 5 });

    // everyone else: sold_out over the stream within 2 s of the admission worker starting, and on a poll
    const late = tabs.slice(3).map((t) => soldOutAt(t)! - start);
    expect(late).toHaveLength(97);
    expect(Math.max(...late)).toBeLessThan(2000);
    const poll = await api.call('GET', `/api/queue/${places[50]!.queueId}`, { token: places[50]!.bearer });
    expect(poll.json).toMatchObject({ status: 'sold_out', aheadOfYou: 47 });

    // tickets that come back reopen admission for those who stayed: the first buyer cancels (seats 2 and 4, apart);
    // their pass, without a hold now, gives its slot back at its grace deadline (20 s after they were told)
    const cancelled = (await engine.bookings.cancel((await engine.waitingRoom.status(firstPlace.status.queueId, first)).bookingId as never, first)).status;
    expect(cancelled).toBe('CANCELLED');
    clock.advance(20_001);
    await waitFor('the next two in line are admitted', () => (admitted.length >= 5 ? true : null), 10_000);
    expect(admitted.slice(3).map((s) => s.queueId).sort()).toEqual(places.slice(3, 5).map((p) => p.queueId).sort());
    expect(admitted.slice(3).map((s) => s.passTickets)).toEqual([1, 1]);
    await waitFor('the rest stay told sold_out', () => (tabs.slice(5).every((t) => t.seen.at(-1)!.status.status === 'sold_out') ? true : null));
  });
});

function u(s: string) {
  return s as UserId;
}
