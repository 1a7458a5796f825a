import fc from 'fast-check';
import { describe, expect, it, type Fixtures } from '../test/fixtures.js';
import { seatedEvent } from '../test/events.js';
import { snapshotPg, snapshotRedis } from '../test/state.js';
import { inProcessApi, token } from '../test/http.js';

/**
 * A seat has one id. Every other spelling of it (leading zeros, signs, spaces, non-ASCII digits, other dashes, numbers
 * too long to be a row) is refused by the API with 400 /problems/validation naming the offending item, before anything
 * runs: Redis and Postgres are unchanged. Canonical ids inside the section's bounds are held; canonical ids outside
 * them (or in a section of another case, which is another section) are refused by the hold script, changing nothing.
 */
const SECTIONS = [
  { id: 'A', rows: 3, seatsPerRow: 12 },
  { id: 'B10', rows: 2, seatsPerRow: 5 },
];
const seat = fc.constantFrom(...SECTIONS).chain((s) =>
  fc.record({ section: fc.constant(s.id), row: fc.integer({ min: 1, max: s.rows }), num: fc.integer({ min: 1, max: s.seatsPerRow }) }),
);
type Seat = { section: string; row: number; num: number };
const id = (s: Seat) => `${s.section}-${s.row}-${s.num}`;

/** Digits of other scripts that \d, parseInt or Lua's tonumber might read (or not) as 0-9. */
const FOREIGN_ZERO = [0x0660, 0x06f0, 0x0966, 0x09e6, 0x0e50, 0xff10, 0x1d7ce, 0x1d7ec];
const SPACES = [' ', '\t', '\n', '\r', '\u00a0', '\u2003', '\u200b', '\ufeff', '\u0000'];
const DASHES = ['_', '\u2010', '\u2013', '\u2212', '--', '', '.', ' - '];

/** Another spelling of the seat `s` (never its canonical id). */
const spelling = (s: Seat): fc.Arbitrary<string> => {
  const part = fc.constantFrom<'row' | 'num'>('row', 'num');
  const withPart = (p: 'row' | 'num', text: string) => (p === 'row' ? `${s.section}-${text}-${s.num}` : `${s.section}-${s.row}-${text}`);
  const value = (p: 'row' | 'num') => String(p === 'row' ? s.row : s.num);
  return fc.oneof(
    // leading zeros: the spelling that stalled an event
    fc.tuple(part, fc.integer({ min: 1, max: 6 })).map(([p, z]) => withPart(p, '0'.repeat(z) + value(p))),
    // signs
    fc.tuple(part, fc.constantFrom('+', '-', '+0', '\u2212')).map(([p, sign]) => withPart(p, sign + value(p))),
    // white space anywhere
    fc.tuple(fc.constantFrom(...SPACES), fc.nat()).map(([ws, at]) => {
      const c = id(s);
      const i = at % (c.length + 1);
      return c.slice(0, i) + ws + c.slice(i);
    }),
    // one digit written with a digit of another script
    fc.tuple(fc.nat(), fc.constantFrom(...FOREIGN_ZERO)).map(([at, zero]) => {
      const c = id(s);
      const digits = [...c].map((ch, i) => (/[0-9]/.test(ch) && i > s.section.length ? i : -1)).filter((i) => i >= 0);
      const i = digits[at % digits.length]!;
      return c.slice(0, i) + String.fromCodePoint(zero + Number(c[i])) + c.slice(i + 1);
    }),
    // numbers other notations read as the same value, and numbers too long to be a row or a seat
    fc.tuple(part, fc.constantFrom('.0', 'e0', '.', 'e+0')).map(([p, tail]) => withPart(p, value(p) + tail)),
    part.map((p) => withPart(p, `0x${Number(value(p)).toString(16)}`)),
    fc.tuple(part, fc.bigInt({ min: 1n, max: 10n ** 30n })).map(([p, k]) => withPart(p, String(BigInt(value(p)) + k * 2n ** 32n))),
    fc.tuple(part, fc.integer({ min: 5, max: 40 })).map(([p, n]) => withPart(p, value(p).padStart(n, '9'))),
    // other separators
    fc.constantFrom(...DASHES).map((d) => `${s.section}${d}${s.row}-${s.num}`),
    fc.constantFrom(...DASHES).map((d) => `${s.section}-${s.row}${d}${s.num}`),
  );
};

let users = 0;

/** The real API (in-process, app.request) and a fresh seated event (closed when the test ends). */
async function world({ engine, redis, ns, pg, onTestFinished }: Pick<Fixtures, 'engine' | 'redis' | 'ns' | 'pg'> & { onTestFinished: (fn: () => Promise<void>) => void }) {
  const api = inProcessApi(engine);
  onTestFinished(() => api.close());
  const eventId = (await engine.createEvent({ ...seatedEvent(SECTIONS), maxTicketsPerUser: 8 })).id;
  return {
    api,
    eventId,
    snapshot: async () => [await snapshotRedis(redis, `${ns}:*`), await snapshotPg(pg)],
    book: async (seatIds: string[], user = `u${++users}`) =>
      api.call('POST', '/api/bookings', { token: await token(user), body: { eventId, ticketCount: seatIds.length, seatPreferences: { seatIds } } }),
  };
}

describe('seat ids', () => {
  it('refuses every other spelling of a seat id with 400 naming the item, and changes nothing', async ({ engine, redis, ns, pg, onTestFinished }) => {
    const { book, snapshot } = await world({ engine, redis, ns, pg, onTestFinished });
    await fc.assert(
      fc.asyncProperty(
        seat.chain((s) => fc.record({ s: fc.constant(s), bad: spelling(s) })),
        fc.uniqueArray(seat, { maxLength: 3, selector: id }),
        fc.nat(),
        fc.boolean(),
        async ({ s, bad }, others, at, withCanonical) => {
          // duplicates by spelling: the canonical id of the very seat, in the same request, when withCanonical
          const rest = others.map(id).filter((x) => x !== id(s));
          if (withCanonical) rest.unshift(id(s));
          const i = withCanonical ? 1 + (at % rest.length) : at % (rest.length + 1);
          const seatIds = [...rest.slice(0, i), bad, ...rest.slice(i)];
          const before = await snapshot();
          const res = await book(seatIds);
          expect(res.status, JSON.stringify({ seatIds, body: res.json })).toBe(400);
          expect(res.headers.get('content-type')).toBe('application/problem+json');
          if (res.json.type === '/problems/raw-card-data') {
            // a long digit run that passes the Luhn check is refused, earlier still, as a possible card number
            expect(bad).toMatch(/[0-9]{13,}/);
          } else {
            expect(res.json.type).toBe('/problems/validation');
            expect(res.json.errors.map((e: { field: string }) => e.field)).toContain(`seatPreferences.seatIds.${i}`);
          }
          expect(await snapshot()).toEqual(before);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('holds canonical seat ids inside the bounds of their section', async ({ engine, redis, ns, pg, onTestFinished }) => {
    const { api, book, eventId } = await world({ engine, redis, ns, pg, onTestFinished });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(seat, { minLength: 1, maxLength: 4, selector: id }), async (seats) => {
        const seatIds = seats.map(id);
        const user = `ok${++users}`;
        const res = await book(seatIds, user);
        expect(res.status, JSON.stringify(res.json)).toBe(201);
        expect([...res.json.seats].sort()).toEqual([...seatIds].sort());
        const maps = await engine.catalog.seatMaps(eventId);
        for (const s of seats) {
          const m = maps.find((x) => x.id === s.section)!;
          expect(m.seatMap[(s.row - 1) * m.seatsPerRow + s.num - 1]).toBe('x');
        }
        for (const m of maps) expect(m.seatMap).toHaveLength(m.rows * m.seatsPerRow);
        // give the seats back, so every run starts from an empty hall
        expect((await api.call('DELETE', `/api/bookings/${res.json.bookingId}`, { token: await token(user) })).status).toBe(200);
      }),
      { numRuns: 40 },
    );
  });

  it('refuses canonical ids outside the bounds (or in a section spelled in another case) with 400, changing nothing', async ({ engine, redis, ns, pg, onTestFinished }) => {
    const { book, snapshot } = await world({ engine, redis, ns, pg, onTestFinished });
    const outside = fc.oneof(
      fc.constantFrom(...SECTIONS).chain((s) =>
        fc.oneof(
          fc.tuple(fc.integer({ min: s.rows + 1, max: 9999 }), fc.integer({ min: 1, max: 9999 })).map(([r, n]) => `${s.id}-${r}-${n}`),
          fc.tuple(fc.integer({ min: 1, max: s.rows }), fc.integer({ min: s.seatsPerRow + 1, max: 9999 })).map(([r, n]) => `${s.id}-${r}-${n}`),
        ),
      ),
      seat.map((s) => id({ ...s, section: s.section.toLowerCase() })),
      seat.map((s) => id({ ...s, section: `${s.section}Z` })),
    );
    await fc.assert(
      fc.asyncProperty(outside, async (bad) => {
        const before = await snapshot();
        const res = await book([bad]);
        expect(res.status, JSON.stringify({ bad, body: res.json })).toBe(400);
        expect(res.headers.get('content-type')).toBe('application/problem+json');
        expect(res.json.type).toBe('/problems/unknown-seat');
        expect(res.json.errors).toEqual([expect.objectContaining({ field: 'seatPreferences.seatIds.0' })]);
        expect(await snapshot()).toEqual(before);
      }),
      { numRuns: 40 },
    );
  });
});
