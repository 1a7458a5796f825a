import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it } from '../../test/fixtures.js';
import { TEST_REDIS_URL } from '../../test/env.js';
import { gaEvent, seatedEvent } from '../../test/events.js';
import { startApi, token } from '../../test/http.js';

/**
 * Redis round trips per hold (issue 13): the rate limit, the idempotency check and the hold are one script call.
 * Counted with Redis MONITOR on a connection of this file's own, keeping only the commands the engine's connection
 * sent (the commands a script runs inside Redis show up with source "lua" and are not round trips).
 */
describe('POST /api/bookings: Redis round trips', () => {
  it('one command per hold (limits on, Idempotency-Key, replay, seats, best, rate-limited); two only for a request refused before its script', async ({ engine, redis, onTestFinished }) => {
    const api = await startApi(engine, { rateLimit: { perUser: 3, perIp: 50, windowSeconds: 60, trustProxyHops: 0 } });
    const monitor = await new Redis(TEST_REDIS_URL).monitor();
    onTestFinished(async () => {
      monitor.disconnect();
      await api.close();
    });
    // the engine's connection as Redis sees it ("addr" of CLIENT INFO is MONITOR's source)
    const addr = /\baddr=(\S+)/.exec(String(await redis.call('CLIENT', 'INFO')))![1]!;
    /** The commands the engine's connection sent while `act` ran (framed by two ECHO markers on that connection). */
    const commandsDuring = async (act: () => Promise<unknown>): Promise<string[]> => {
      const [start, end] = [`start-${randomUUID()}`, `end-${randomUUID()}`];
      const seen: string[] = [];
      let recording = false;
      let finished!: () => void;
      const done = new Promise<void>((resolve) => (finished = resolve));
      const onCommand = (_time: string, args: string[], source: string) => {
        if (source !== addr) return;
        if (args[0]?.toLowerCase() === 'echo' && args[1] === start) recording = true;
        else if (args[0]?.toLowerCase() === 'echo' && args[1] === end) finished();
        // a script call is EVAL the first time this client runs that script, EVALSHA afterwards: one command either way
        else if (recording) seen.push(args[0]!.toLowerCase().replace(/^evalsha$/, 'eval'));
      };
      monitor.on('monitor', onCommand);
      try {
        await redis.echo(start);
        await act();
        await redis.echo(end);
        await done;
      } finally {
        monitor.off('monitor', onCommand);
      }
      return seen;
    };

    const ga = await engine.createEvent(gaEvent(100, { maxTicketsPerUser: 50 }));
    const seated = await engine.createEvent(seatedEvent([{ id: 'A', rows: 2, seatsPerRow: 10 }]));
    const hold = async (who: string, body: object, headers: Record<string, string> = {}) =>
      api.call('POST', '/api/bookings', { token: await token(who), body, headers });
    // warm up: the catalog record of each event is read once (Postgres) and the scripts are loaded (EVAL on NOSCRIPT)
    expect((await hold('warm', { eventId: ga.id, ticketCount: 1 })).status).toBe(201);
    expect((await hold('warm', { eventId: seated.id, ticketCount: 1 })).status).toBe(201);

    const first = { eventId: ga.id, ticketCount: 2 };
    const key = { 'idempotency-key': `k-${randomUUID()}` };
    let answer: Awaited<ReturnType<typeof hold>> | undefined;
    expect(await commandsDuring(async () => (answer = await hold('ann', first, key)))).toEqual(['eval']);
    expect(answer!.status).toBe(201);
    expect(await commandsDuring(async () => (answer = await hold('ann', first, key)))).toEqual(['eval']);
    expect([answer!.status, answer!.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect(await commandsDuring(async () => (answer = await hold('ann', { eventId: seated.id, ticketCount: 1, seatPreferences: { seatIds: ['A-2-1'] } })))).toEqual(['eval']);
    expect(answer!.status).toBe(201);
    expect(await commandsDuring(async () => (answer = await hold('ann', { eventId: seated.id, ticketCount: 2, seatPreferences: { section: 'A' } })))).toEqual(['eval']);
    expect(answer!.status).toBe(201);
    // ann has used 2 of her 3 holds on the GA event (a replay counts: the limit comes first, and holds count per event);
    // the 4th is refused in the same one call
    expect((await hold('ann', { eventId: ga.id, ticketCount: 1 })).status).toBe(201);
    expect(await commandsDuring(async () => (answer = await hold('ann', { eventId: ga.id, ticketCount: 1 })))).toEqual(['eval']);
    expect([answer!.status, answer!.json.type]).toEqual([429, '/problems/rate-limited']);
    // refused before any script (an invalid body): counted afterwards, per user and per IP, the two calls sent together
    expect(await commandsDuring(async () => (answer = await hold('bea', { eventId: ga.id, ticketCount: 0 })))).toEqual(['eval', 'eval']);
    expect([answer!.status, answer!.json.type]).toEqual([400, '/problems/validation']);
  });
});
