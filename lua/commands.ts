import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cluster, Redis, Result } from 'ioredis';
import type * as C from './codes.js';

/** Folder of the .lua sources (next to this file, in the source tree and in dist/). */
export const LUA_DIR = dirname(fileURLToPath(import.meta.url));

const SCRIPT_NAME = /^([a-z][A-Za-z]+)-(\d+)\.lua$/;
const INCLUDE = /^---\s*@include\s+"(.+?)"\s*$/gm;

export type ScriptSource = { name: string; numberOfKeys: number; file: string; lua: string };

/** Expands `--- @include "includes/x"` lines (each include once, relative to the lua folder). */
async function expandIncludes(dir: string, source: string, seen = new Set<string>()): Promise<string> {
  let out = '';
  let last = 0;
  for (const m of source.matchAll(INCLUDE)) {
    const name = m[1]!;
    out += source.slice(last, m.index);
    last = m.index + m[0].length;
    if (seen.has(name)) continue;
    seen.add(name);
    const included = await readFile(join(dir, `${name}.lua`), 'utf8');
    out += await expandIncludes(dir, included, seen);
  }
  return out + source.slice(last);
}

/** Reads every script in `dir`, checks its file name, expands includes. */
export async function readScripts(dir = LUA_DIR): Promise<ScriptSource[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.lua')).sort();
  const scripts: ScriptSource[] = [];
  for (const file of files) {
    const m = SCRIPT_NAME.exec(file);
    if (!m) throw new Error(`lua/${file}: expected <camelCaseName>-<numKeys>.lua`);
    const raw = await readFile(join(dir, file), 'utf8');
    scripts.push({ name: m[1]!, numberOfKeys: Number(m[2]), file, lua: await expandIncludes(dir, raw) });
  }
  return scripts;
}

let cache: Promise<ScriptSource[]> | undefined;

/** Registers every script once on a client (ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT). */
export async function loadCommands(redis: Redis | Cluster): Promise<void> {
  cache ??= readScripts();
  for (const s of await cache) {
    redis.defineCommand(s.name, { numberOfKeys: s.numberOfKeys, lua: s.lua });
  }
}

type K = string;
type A = string | number;
declare module 'ioredis' {
  interface RedisCommander<Context> {
    armEvent(meta: K, inv: K, sec: K, smap: K, buyers: K, eventId: A, specJson: A, mode: 'arm' | 'rebuild'): Result<C.ReplyOf<typeof C.ArmEventReply>, Context>;
    holdGeneral(meta: K, inv: K, hold: K, expiry: K, buyers: K, idem: K, outbox: K, passes: K, used: K, rlUser: K, rlIp: K,
      eventId: A, bookingId: A, userId: A, tierId: A, count: A, nowMs: A, ttlMs: A, fingerprint: A, idemTtlMs: A, pass: A, idemKey: A,
      limits: A): Result<C.ReplyOf<typeof C.HoldGeneralReply>, Context>;
    holdSeats(meta: K, inv: K, sec: K, smap: K, hold: K, expiry: K, buyers: K, idem: K, outbox: K, passes: K, used: K, rlUser: K, rlIp: K,
      eventId: A, bookingId: A, userId: A, tierId: A, nowMs: A, ttlMs: A, fingerprint: A, idemTtlMs: A, pass: A, idemKey: A, limits: A,
      ...seatIds: A[]): Result<C.ReplyOf<typeof C.HoldSeatsReply>, Context>;
    holdBest(meta: K, inv: K, sec: K, smap: K, hold: K, expiry: K, buyers: K, idem: K, outbox: K, passes: K, used: K, rlUser: K, rlIp: K,
      eventId: A, bookingId: A, userId: A, tierId: A, count: A, nowMs: A, ttlMs: A, fingerprint: A, idemTtlMs: A,
      section: A, adjacent: '1' | '0', pass: A, idemKey: A, limits: A): Result<C.ReplyOf<typeof C.HoldBestReply>, Context>;
    releaseHold(inv: K, sec: K, smap: K, hold: K, expiry: K, buyers: K, outbox: K, used: K,
      eventId: A, bookingId: A, userId: A, nowMs: A, eventType: 'BookingCancelled' | 'BookingFailed', reason: A, allowedStates: A): Result<C.ReplyOf<typeof C.ReleaseHoldReply>, Context>;
    expireHold(inv: K, sec: K, smap: K, hold: K, expiry: K, buyers: K, outbox: K, used: K,
      eventId: A, bookingId: A, nowMs: A): Result<C.ReplyOf<typeof C.ExpireHoldReply>, Context>;
    confirmHold(inv: K, sec: K, smap: K, hold: K, expiry: K, outbox: K,
      eventId: A, bookingId: A, nowMs: A, paymentRef: A): Result<C.ReplyOf<typeof C.ConfirmHoldReply>, Context>;
    payHold(hold: K, expiry: K, outbox: K, eventId: A, bookingId: A, userId: A, nowMs: A, windowMs: A, mode: 'start' | 'decline',
      attempt: A, reason: A, holderName: A, holderEmail: A, holderPhone: A): Result<C.ReplyOf<typeof C.PayHoldReply>, Context>;
    retakeHold(inv: K, sec: K, smap: K, hold: K, expiry: K, buyers: K, outbox: K, eventId: A, bookingId: A, userId: A, tierId: A,
      count: A, seats: A, nowMs: A, paymentRef: A): Result<C.ReplyOf<typeof C.RetakeHoldReply>, Context>;
    refundHold(inv: K, sec: K, smap: K, hold: K, buyers: K, outbox: K, eventId: A, bookingId: A, nowMs: A, reason: A): Result<C.ReplyOf<typeof C.RefundHoldReply>, Context>;
    restoreHold(hold: K, expiry: K, bookingId: A, userId: A, tierId: A, count: A, seats: A, expiresAtMs: A, createdAtMs: A,
      state: 'held' | 'paying' | 'sold', attempts: A): Result<C.ReplyOf<typeof C.RestoreHoldReply>, Context>;
    rateLimit(counter: K, points: A, windowMs: A): Result<C.ReplyOf<typeof C.RateLimitReply>, Context>;
    takeLease(lease: K, owner: A, ttlMs: A, mode: 'take' | 'drop'): Result<C.ReplyOf<typeof C.TakeLeaseReply>, Context>;
    streamSlot(slots: K, streamId: A, nowMs: A, ttlMs: A, max: A, mode: 'take' | 'drop'): Result<C.ReplyOf<typeof C.StreamSlotReply, number>, Context>;
    configureQueue(cfg: K, meta: K, enabled: '1' | '0', opensAtMs: A, salesAtMs: A, rate: A, passTtlMs: A, ticketsPerPass: A,
      seed: A, seedHash: A, graceMs: A, unseenGraceMs: A): Result<C.ReplyOf<typeof C.ConfigureQueueReply>, Context>;
    joinQueue(cfg: K, pre: K, line: K, passes: K, done: K, joined: K, member: A, nowMs: A): Result<C.ReplyOf<typeof C.JoinQueueReply>, Context>;
    joinWaitlist(meta: K, inv: K, buyers: K, line: K, want: K, userId: A, tierId: A, count: A, email: A): Result<C.ReplyOf<typeof C.JoinWaitlistReply>, Context>;
    offerWaitlist(meta: K, inv: K, line: K, want: K, offers: K, hold: K, expiry: K, buyers: K, outbox: K,
      eventId: A, bookingId: A, tierId: A, nowMs: A, ttlMs: A): Result<C.ReplyOf<typeof C.OfferWaitlistReply>, Context>;
    leaveQueue(pre: K, line: K, passes: K, done: K, member: A): Result<C.ReplyOf<typeof C.LeaveQueueReply>, Context>;
    admitNext(cfg: K, pre: K, line: K, passes: K, used: K, done: K, inv: K, joined: K, grace: K, seen: K, meta: K,
      nowMs: A, maxAdmit: A, heldShare: A, singles: '1' | '0', activeCap: A): Result<C.ReplyOf<typeof C.AdmitNextReply>, Context>;
    queueStatus(cfg: K, pre: K, line: K, passes: K, used: K, done: K, inv: K, grace: K, seen: K, meta: K, member: A, nowMs: A): Result<C.ReplyOf<typeof C.QueueStatusReply>, Context>;
  }
}
