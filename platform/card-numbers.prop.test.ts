import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CARD_CANDIDATE, containsCardNumber, hasLongDigitRun, maskCardNumbers, scanForCardNumber } from './card-numbers.js';

/** Text made of what matters to the scan: digits, the two separators, a '+', and ordinary characters. */
const scanText = fc
  .array(fc.oneof(fc.constantFrom('0', '1', '2', '3', '4', '5', '6', '7', '8', '9'), fc.constantFrom(' ', '-', '+', 'a', '"', ',', ':', '.', '\n', 'é')), { maxLength: 80 })
  .map((cs) => cs.join(''));
/** A real card number written the ways cards are written, inside ordinary JSON. */
const cardInText = fc
  .tuple(
    fc.constantFrom('4242424242424242', '4000056655665556', '5555555555554444', '378282246310005', '6011111111111117', '3566002020360505', '2223003122003222'),
    fc.constantFrom('', ' ', '-'),
    fc.string({ maxLength: 20 }),
    fc.string({ maxLength: 20 }),
  )
  .map(([card, sep, before, after]) => `${before}{"note":"${card.replace(/(\d{4})(?=\d)/g, `$1${sep}`)}"}${after}`);

describe('the card-number scan fast path', () => {
  it('hasLongDigitRun is true exactly when CARD_CANDIDATE finds a match', () => {
    fc.assert(fc.property(fc.oneof(scanText, fc.string({ maxLength: 60 }), cardInText), (text) => {
      expect(hasLongDigitRun(text)).toBe(new RegExp(CARD_CANDIDATE.source).test(text));
    }), { numRuns: 3000 });
  });

  it('gives the verdict of the full scan on any text (ordinary bodies, digit soup, real cards)', () => {
    fc.assert(fc.property(fc.oneof(scanText, fc.string({ maxLength: 200 }), fc.json(), cardInText), (text) => {
      expect(containsCardNumber(text)).toBe(scanForCardNumber(text));
    }), { numRuns: 3000 });
  });

  it('still finds every real card, however it is written, and masks it', () => {
    fc.assert(fc.property(cardInText, (text) => {
      expect(containsCardNumber(text)).toBe(true);
      expect(containsCardNumber(maskCardNumbers(text))).toBe(false);
    }));
  });

  it('answers an ordinary booking body, phone numbers, timestamps and runs broken by two separators without a card', () => {
    expect(containsCardNumber('{"eventId":"ev_abcdefghijkl","ticketCount":2,"seatPreferences":{"seatIds":["A-1-1","A-1-2"]}}')).toBe(false);
    expect(hasLongDigitRun('{"eventId":"ev_abcdefghijkl","ticketCount":2}')).toBe(false);
    expect(containsCardNumber('call +4242424242424242')).toBe(false);
    expect(hasLongDigitRun('4242 4242  4242 4242')).toBe(false);
    expect(containsCardNumber('4242-4242-4242-4242')).toBe(true);
    expect(maskCardNumbers('no digits here')).toBe('no digits here');
  });
});
