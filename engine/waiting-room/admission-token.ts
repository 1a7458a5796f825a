import { createHmac, timingSafeEqual } from 'node:crypto';
import type { EventId, UserId } from '../ids.js';

/**
 * Admission passes: `AP1.<eventId>.<userId>.<member>.<expiresAtMs>.<sig>` where sig is HMAC-SHA256 over the rest
 * (base64url, 32 bytes). Bound to one person and one event, valid until expiresAtMs. The pass is also live in Redis
 * (the hold script checks it there), so a pass that was given back or expired early stops working at once.
 */
export type AdmissionClaims = { eventId: EventId; userId: UserId; member: string; expiresAtMs: number };
export type AdmissionCheck = { ok: true; claims: AdmissionClaims } | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' | 'wrong-user' | 'wrong-event' };

const FORMAT = /^AP1\.(ev_[a-z0-9]{12})\.([A-Za-z0-9_-]{1,64})\.([0-9a-f]{16})\.(\d{13})\.([A-Za-z0-9_-]{43})$/;

const mac = (secret: string, body: string) => createHmac('sha256', secret).update(body).digest('base64url');

export function signAdmission(secret: string, c: AdmissionClaims): string {
  const body = `AP1.${c.eventId}.${c.userId}.${c.member}.${c.expiresAtMs}`;
  return `${body}.${mac(secret, body)}`;
}

export function verifyAdmission(
  secret: string,
  token: string,
  expect: { eventId: EventId; userId: UserId; nowMs: number },
): AdmissionCheck {
  const m = FORMAT.exec(token);
  if (!m) return { ok: false, reason: 'malformed' };
  const body = token.slice(0, token.lastIndexOf('.'));
  const given = Buffer.from(m[5]!, 'base64url');
  const want = Buffer.from(mac(secret, body), 'base64url');
  if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, reason: 'bad-signature' };
  const claims: AdmissionClaims = { eventId: m[1] as EventId, userId: m[2] as UserId, member: m[3]!, expiresAtMs: Number(m[4]) };
  if (claims.eventId !== expect.eventId) return { ok: false, reason: 'wrong-event' };
  if (claims.userId !== expect.userId) return { ok: false, reason: 'wrong-user' };
  if (claims.expiresAtMs <= expect.nowMs) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}
