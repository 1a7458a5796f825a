import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BookingId, EventId } from '../ids.js';
import { signTicketCode, verifyTicketCode, type TicketClaims } from './ticket-code.js';

const SECRET = 'prop-ticket-secret-0123456789abcdef';
const id = (n: number) => fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: n, maxLength: n });
const claimsArb: fc.Arbitrary<TicketClaims> = fc
  .record({
    ev: id(12),
    bk: id(16),
    ticket: fc.integer({ min: 1, max: 9999 }),
    seat: fc.option(
      fc.tuple(fc.stringMatching(/^[A-Za-z0-9]{1,16}$/), fc.integer({ min: 1, max: 9999 }), fc.integer({ min: 1, max: 9999 })),
      { nil: undefined },
    ),
  })
  .map(({ ev, bk, ticket, seat }) => {
    const c: TicketClaims = { eventId: `ev_${ev}` as EventId, bookingId: `bk_${ev}_${bk}` as BookingId, ticket };
    if (seat) c.seat = seat.join('-');
    return c;
  });
const rejected = (r: ReturnType<typeof verifyTicketCode>) => !r.ok && (r.reason === 'malformed' || r.reason === 'bad-signature');

describe('ticket codes (properties)', () => {
  it('round-trip any valid claims', () => {
    fc.assert(fc.property(claimsArb, (c) => {
      expect(verifyTicketCode(SECRET, signTicketCode(SECRET, c))).toEqual({ ok: true, claims: c });
    }));
  });

  it('never throw and reject arbitrary strings (any unicode, lone surrogates included)', () => {
    const junk = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.string({ unit: 'grapheme', maxLength: 100 }),
      fc.array(fc.string({ unit: 'binary-ascii', maxLength: 40 }), { maxLength: 6 }).map((parts) => ['FG1', ...parts].join('.')),
    );
    fc.assert(fc.property(junk, (s) => {
      expect(rejected(verifyTicketCode(SECRET, s))).toBe(true);
    }), { numRuns: 2000 });
  });

  it('reject a valid code with any one character replaced, inserted or deleted', () => {
    const edit = fc.record({
      at: fc.nat(),
      ch: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
      op: fc.constantFrom('set', 'ins', 'del'),
    });
    fc.assert(
      fc.property(claimsArb, edit, (c, { at, ch, op }) => {
        const code = signTicketCode(SECRET, c);
        const i = at % code.length;
        const bad = code.slice(0, i) + (op === 'del' ? '' : ch) + code.slice(op === 'ins' ? i : i + 1);
        fc.pre(bad !== code);
        expect(rejected(verifyTicketCode(SECRET, bad))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
