import { describe, expect, it } from 'vitest';
import type { BookingId, EventId } from '../ids.js';
import { MAX_TICKET_CODE_LENGTH, signTicketCode, ticketKey, verifyTicketCode, type TicketClaims } from './ticket-code.js';

const SECRET = 'test-ticket-secret-0123456789abcdef';
const OTHER = 'test-ticket-secret-fedcba9876543210';
const eventId = 'ev_k3j9x0a1b2c3' as EventId;
const bookingId = 'bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1' as BookingId;
const seated: TicketClaims = { eventId, bookingId, ticket: 2, seat: 'A-12-7' };
const ga: TicketClaims = { eventId, bookingId, ticket: 1 };
const URL_SAFE = /^[A-Za-z0-9._~-]+$/;

/** Every string at Hamming distance 1 from `s` over the base64url alphabet plus a few separators. */
function singleCharVariants(s: string): string[] {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~';
  const out: string[] = [];
  for (let i = 0; i < s.length; i++) {
    for (const c of alphabet) if (c !== s[i]) out.push(s.slice(0, i) + c + s.slice(i + 1));
  }
  return out;
}

describe('signTicketCode / verifyTicketCode', () => {
  describe('with the right secret', () => {
    it('round-trips a seated ticket', () => {
      const code = signTicketCode(SECRET, seated);
      expect(code).toMatch(/^FG1\./);
      expect(code).toMatch(URL_SAFE);
      expect(code.length).toBeLessThanOrEqual(MAX_TICKET_CODE_LENGTH);
      expect(verifyTicketCode(SECRET, code)).toEqual({ ok: true, claims: seated });
    });

    it('round-trips a general-admission ticket without a seat claim', () => {
      const r = verifyTicketCode(SECRET, signTicketCode(SECRET, ga));
      expect(r).toEqual({ ok: true, claims: ga });
      expect(r.ok && 'seat' in r.claims).toBe(false);
    });

    it('accepts a Uint8Array secret equal to the string secret', () => {
      const code = signTicketCode(Buffer.from(SECRET), seated);
      expect(code).toBe(signTicketCode(SECRET, seated));
      expect(verifyTicketCode(new Uint8Array(Buffer.from(SECRET)), code).ok).toBe(true);
    });

    it('gives different codes to different tickets of one booking', () => {
      const codes = new Set([1, 2, 3].map((ticket) => signTicketCode(SECRET, { ...ga, ticket })));
      expect(codes.size).toBe(3);
    });
  });

  describe('when the code was altered', () => {
    it('rejects every single-character change anywhere in the code', () => {
      const code = signTicketCode(SECRET, seated);
      const variants = singleCharVariants(code);
      expect(variants.length).toBeGreaterThan(code.length * 60);
      const accepted = variants.filter((v) => verifyTicketCode(SECRET, v).ok);
      expect(accepted).toEqual([]);
    });

    it('rejects a truncated or extended code', () => {
      const code = signTicketCode(SECRET, seated);
      for (let n = 0; n < code.length; n++) expect(verifyTicketCode(SECRET, code.slice(0, n)).ok).toBe(false);
      expect(verifyTicketCode(SECRET, code + 'A')).toEqual({ ok: false, reason: 'malformed' });
      expect(verifyTicketCode(SECRET, code + '.x')).toEqual({ ok: false, reason: 'malformed' });
    });

    it('rejects a seat swapped into a valid code as bad-signature', () => {
      const code = signTicketCode(SECRET, seated);
      expect(verifyTicketCode(SECRET, code.replace('A-12-7', 'A-12-8'))).toEqual({ ok: false, reason: 'bad-signature' });
      expect(verifyTicketCode(SECRET, code.replace('~2~', '~3~'))).toEqual({ ok: false, reason: 'bad-signature' });
    });
  });

  describe('with another secret', () => {
    it('rejects as bad-signature', () => {
      expect(verifyTicketCode(OTHER, signTicketCode(SECRET, seated))).toEqual({ ok: false, reason: 'bad-signature' });
    });
  });

  describe('garbage input', () => {
    it.each([
      ['empty', ''],
      ['a dot', '.'],
      ['the prefix only', 'FG1.'],
      ['extra dots', 'FG1.a.b.c.AAAAAAAAAAAAAAAAAAAAAAAA'],
      ['unicode', 'FG1.bk_ü~1.AAAAAAAAAAAAAAAAAAAAAAAA'],
      ['a JWT', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'],
      ['huge', 'FG1.' + 'a'.repeat(1_000_000) + '.AAAAAAAAAAAAAAAAAAAAAAAA'],
    ])('rejects %s as malformed', (_name, code) => {
      expect(verifyTicketCode(SECRET, code)).toEqual({ ok: false, reason: 'malformed' });
    });

    it('rejects a well-shaped code with a made-up signature as bad-signature', () => {
      expect(verifyTicketCode(SECRET, `FG1.${bookingId}~1.AAAAAAAAAAAAAAAAAAAAAAAA`)).toEqual({ ok: false, reason: 'bad-signature' });
    });

    it('rejects non-strings as malformed instead of throwing', () => {
      expect(verifyTicketCode(SECRET, undefined as unknown as string)).toEqual({ ok: false, reason: 'malformed' });
      expect(verifyTicketCode(SECRET, 42 as unknown as string)).toEqual({ ok: false, reason: 'malformed' });
    });
  });

  describe('invalid claims or secrets (caller bugs)', () => {
    it.each<[string, TicketClaims]>([
      ['a bad event id', { ...ga, eventId: 'ev_X' as EventId }],
      ['a booking of another event', { ...ga, eventId: 'ev_aaaaaaaaaaaa' as EventId }],
      ['a bad booking id', { ...ga, bookingId: 'bk_1' as BookingId }],
      ['ticket 0', { ...ga, ticket: 0 }],
      ['a fractional ticket', { ...ga, ticket: 1.5 }],
      ['ticket 10000', { ...ga, ticket: 10_000 }],
      ['a bad seat', { ...ga, seat: 'A 12 7' }],
      ['a seat with a separator', { ...ga, seat: 'A-1-1~x' }],
    ])('signTicketCode throws on %s', (_name, claims) => {
      expect(() => signTicketCode(SECRET, claims)).toThrow(/signTicketCode/);
    });

    it('refuses secrets shorter than 32 bytes', () => {
      expect(() => signTicketCode('short', ga)).toThrow(/at least 32 bytes/);
      expect(() => verifyTicketCode('short', 'x')).toThrow(/at least 32 bytes/);
    });
  });
});

describe('ticketKey', () => {
  it('is stable per ticket and ignores the seat', () => {
    expect(ticketKey(seated)).toBe(`${bookingId}#2`);
    const moved: TicketClaims = { ...seated, seat: 'B-1-1' };
    expect(ticketKey(moved)).toBe(ticketKey(seated));
  });

  it('differs between tickets and bookings', () => {
    const keys = new Set([
      ticketKey(ga),
      ticketKey({ ...ga, ticket: 2 }),
      ticketKey({ ...ga, bookingId: 'bk_k3j9x0a1b2c3_aaaaaaaaaaaaaaaa' as BookingId }),
    ]);
    expect(keys.size).toBe(3);
  });

  it('is the same for the claims that verify returns', () => {
    const r = verifyTicketCode(SECRET, signTicketCode(SECRET, seated));
    expect(r.ok && ticketKey(r.claims)).toBe(ticketKey(seated));
  });
});
