/**
 * Reply codes of the Lua scripts (the first element of every reply): one closed table per script, named as the
 * script's header names them in its Output section. Positive and zero codes are successes; negative codes are
 * expected rejections that changed nothing. Codes are only unique within one script (holdGeneral's HELD and
 * joinQueue's JOINED are both 1), so each engine call switches over its own script's table and ends in
 * `assertNever`: a code added to a table but not handled fails typecheck, and `lua/commands.test.ts` fails when a
 * header documents a code its table lacks (or the other way round).
 */

/** The codes every hold script answers with from `includes/holdCommon` (idempotency, sale, pass and cap checks). */
const HoldCommonReply = {
  HELD: 1,
  REPLAYED: 2,
  NOT_ARMED: -1,
  SALES_NOT_OPEN: -2,
  TICKET_LIMIT: -7,
  IDEMPOTENCY_MISMATCH: -8,
  NOT_ADMITTED: -33,
  PASS_IN_USE: -34,
  PASS_LIMIT: -37,
  RATE_LIMITED: -40,
} as const;

export const HoldGeneralReply = { ...HoldCommonReply, UNKNOWN_TIER: -3, INSUFFICIENT: -4, TIER_KIND: -9 } as const;

export const HoldSeatsReply = { ...HoldCommonReply, SEAT_TAKEN: -5, UNKNOWN_SEAT: -6, SEAT_TIER_MISMATCH: -10 } as const;

export const HoldBestReply = {
  ...HoldCommonReply,
  UNKNOWN_TIER: -3,
  INSUFFICIENT: -4,
  TIER_KIND: -9,
  SEAT_TIER_MISMATCH: -10,
  NO_ADJACENT: -11,
  UNKNOWN_SECTION: -12,
} as const;

export const ArmEventReply = { ARMED: 1, ALREADY_ARMED: 0 } as const;

export const ReleaseHoldReply = { RELEASED: 1, HOLD_NOT_FOUND: -20, NOT_OWNER: -21, NOT_RELEASABLE: -22, HOLD_EXPIRED: -23 } as const;

export const ExpireHoldReply = { EXPIRED: 1, NOT_DUE: 0, HOLD_NOT_FOUND: -20, NOT_RELEASABLE: -22 } as const;

export const ConfirmHoldReply = { CONFIRMED: 1, ALREADY_CONFIRMED: 3, HOLD_NOT_FOUND: -20, HOLD_EXPIRED: -23 } as const;

export const PayHoldReply = {
  DONE: 1,
  HOLD_NOT_FOUND: -20,
  NOT_OWNER: -21,
  NOT_RELEASABLE: -22,
  HOLD_EXPIRED: -23,
  NO_ATTEMPTS_LEFT: -25,
  OTHER_ATTEMPT: -26,
} as const;

export const RetakeHoldReply = { RETAKEN: 1, ALREADY_CONFIRMED: 3, GONE: -24 } as const;

export const RefundHoldReply = { RELEASED: 1, HOLD_NOT_FOUND: -20, NOT_RELEASABLE: -22 } as const;

export const RestoreHoldReply = { RESTORED: 1, ALREADY_THERE: 0 } as const;

export const RateLimitReply = { ALLOWED: 1, RATE_LIMITED: -40 } as const;

export const TakeLeaseReply = { HELD: 1, BUSY: 0 } as const;

export const StreamSlotReply = { HELD: 1, BUSY: 0 } as const;

export const ConfigureQueueReply = { CONFIGURED: 1, NOT_ARMED: -1 } as const;

export const JoinQueueReply = { JOINED: 1, ALREADY_IN: 2, FINISHED: 3, NOT_ENABLED: -30, CLOSED: -31, NOT_OPEN_YET: -32 } as const;

export const LeaveQueueReply = { LEFT: 1, NOT_IN_QUEUE: -36 } as const;

export const AdmitNextReply = { TICKED: 1, IDLE: 0 } as const;

export const QueueStatusReply = { FOUND: 1, NOT_IN_QUEUE: -36 } as const;

export const JoinWaitlistReply = { JOINED: 1, ALREADY_IN: 2, NOT_ARMED: -1, UNKNOWN_TIER: -3, TIER_KIND: -9, TICKET_LIMIT: -7, NOT_SOLD_OUT: -50 } as const;

export const OfferWaitlistReply = { OFFERED: 1, LINE_EMPTY: 0, NOT_ARMED: -1, NOTHING_FREE: -4, SKIPPED: -7 } as const;

/** Every script's reply table, by script name (the file name before `-<numKeys>.lua`). */
export const REPLIES = {
  admitNext: AdmitNextReply,
  armEvent: ArmEventReply,
  configureQueue: ConfigureQueueReply,
  confirmHold: ConfirmHoldReply,
  expireHold: ExpireHoldReply,
  holdBest: HoldBestReply,
  holdGeneral: HoldGeneralReply,
  holdSeats: HoldSeatsReply,
  joinQueue: JoinQueueReply,
  joinWaitlist: JoinWaitlistReply,
  leaveQueue: LeaveQueueReply,
  offerWaitlist: OfferWaitlistReply,
  payHold: PayHoldReply,
  queueStatus: QueueStatusReply,
  rateLimit: RateLimitReply,
  refundHold: RefundHoldReply,
  releaseHold: ReleaseHoldReply,
  restoreHold: RestoreHoldReply,
  retakeHold: RetakeHoldReply,
  streamSlot: StreamSlotReply,
  takeLease: TakeLeaseReply,
} as const satisfies Record<string, Record<string, number>>;
export type ScriptName = keyof typeof REPLIES;

/** The codes of one reply table, as a union of literals. */
export type CodeOf<T extends Record<string, number>> = T[keyof T];

/** A raw reply of a script whose codes are table `T`: the code, then its fields (strings unless said otherwise). */
export type ReplyOf<T extends Record<string, number>, F = string> = [code: CodeOf<T>, ...fields: F[]];

/**
 * The end of every exhaustive switch over a script's reply code. Typecheck proves it unreachable; at run time a
 * code the table does not know (a script newer than this code) is a bug: a plain Error, rendered as a 500.
 */
export function assertNever(x: never, what: string): never {
  throw new Error(`${what}: unexpected script reply ${String(x)}`);
}
