/**
 * Recognising card numbers (PANs) in free text, so the API can refuse them and logs can mask them. A digit run counts
 * as a card number when it has 13-19 digits (single spaces or dashes allowed between them, as cards are written),
 * starts with a card network's issuer prefix and passes the Luhn checksum. The prefix matters: one random digit run in
 * ten passes Luhn, and phone numbers or millisecond timestamps are long digit runs too.
 */

/** 13-19 digits, optionally grouped by single spaces or dashes. */
export const CARD_CANDIDATE = /(?:\d[ -]?){12,18}\d/g;

/** The Luhn checksum every card number passes. */
export function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let n = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1 && (n *= 2) > 9) n -= 9;
    sum += n;
  }
  return sum % 10 === 0;
}

const between = (s: string, len: number, lo: number, hi: number) => {
  const n = Number(s.slice(0, len));
  return n >= lo && n <= hi;
};

/**
 * Issuer prefixes (IIN ranges) of the card networks: Visa 4; Mastercard 51-55 and 2221-2720; Maestro 50, 56-69;
 * American Express 34, 37; Discover 6011, 644-649, 65; JCB 3528-3589; Diners Club 300-305, 3095, 36, 38, 39;
 * UnionPay 62, 81. (Maestro's 6x covers Discover's and UnionPay's; they are listed for the record.)
 */
export function hasCardPrefix(d: string): boolean {
  switch (d[0]) {
    case '4':
      return true;
    case '5':
    case '6':
      return true; // 50-55 Mastercard/Maestro, 56-69 Maestro, Discover, UnionPay
    case '2':
      return between(d, 4, 2221, 2720);
    case '3':
      return between(d, 2, 34, 34) || between(d, 2, 36, 39) || between(d, 3, 300, 305) || between(d, 4, 3095, 3095) || between(d, 4, 3528, 3589);
    case '8':
      return d[1] === '1';
    default:
      return false;
  }
}

/** True for a digit string (no separators) that is a plausible card number. */
export const isCardNumber = (digits: string) => digits.length >= 13 && digits.length <= 19 && hasCardPrefix(digits) && luhn(digits);

/**
 * True when `text` has 13 or more digits in a row, allowing one space or dash between two digits: exactly the texts in
 * which CARD_CANDIDATE finds a match. One pass over the character codes, no allocation, and it stops at the 13th
 * digit; most request bodies (ids, counts, short numbers) have no such run, so the regex never runs for them.
 */
export function hasLongDigitRun(text: string): boolean {
  let run = 0; // digits in the current run
  let gap = false; // the previous character was a separator right after a digit
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch >= 48 && ch <= 57) {
      if (++run >= 13) return true;
      gap = false;
    } else if ((ch === 32 || ch === 45) && run > 0 && !gap) {
      gap = true;
    } else {
      run = 0;
      gap = false;
    }
  }
  return false;
}

/**
 * True when `text` holds a card number. A run right after a '+' is an international phone number (E.164), not a card.
 * Texts without a run of 13 digits (hasLongDigitRun) cannot hold one and are answered without the regex.
 */
export function containsCardNumber(text: string): boolean {
  return hasLongDigitRun(text) && scanForCardNumber(text);
}

/** containsCardNumber without the fast path: every CARD_CANDIDATE match is checked (the reference verdict). */
export function scanForCardNumber(text: string): boolean {
  for (const m of text.matchAll(CARD_CANDIDATE)) {
    if (m.index > 0 && text[m.index - 1] === '+') continue;
    if (isCardNumber(m[0].replace(/[ -]/g, ''))) return true;
  }
  return false;
}

/** Replaces every card number in a string with "[card]" (phone numbers, timestamps and ids stay). */
export function maskCardNumbers(s: string): string {
  if (!hasLongDigitRun(s)) return s;
  return s.replace(CARD_CANDIDATE, (m, offset: number) => (offset > 0 && s[offset - 1] === '+') || !isCardNumber(m.replace(/[ -]/g, '')) ? m : '[card]');
}
