/** Reply codes of the Lua scripts (the first element of every reply), shared with the engine.
 *  Positive and zero codes are successes; negative codes are expected rejections that changed nothing. */
export const Reply = {
  OK: 1,
  REPLAYED: 2,
  ALREADY_CONFIRMED: 3,
  ALREADY_ARMED: 0,
  NOT_DUE: 0,
  NOT_ARMED: -1,
  SALES_NOT_OPEN: -2,
  UNKNOWN_TIER: -3,
  INSUFFICIENT: -4,
  SEAT_TAKEN: -5,
  UNKNOWN_SEAT: -6,
  TICKET_LIMIT: -7,
  IDEMPOTENCY_MISMATCH: -8,
  TIER_KIND: -9,
  SEAT_TIER_MISMATCH: -10,
  NO_ADJACENT: -11,
  UNKNOWN_SECTION: -12,
  HOLD_NOT_FOUND: -20,
  NOT_OWNER: -21,
  NOT_RELEASABLE: -22,
  HOLD_EXPIRED: -23,
  GONE: -24,
  // waiting room
  JOINED: 1,
  ALREADY_IN: 2,
  FINISHED: 3,
  IDLE: 0,
  QUEUE_NOT_ENABLED: -30,
  QUEUE_CLOSED: -31,
  QUEUE_NOT_OPEN_YET: -32,
  NOT_ADMITTED: -33,
  PASS_IN_USE: -34,
  NOT_IN_QUEUE: -36,
} as const;
export type ReplyCode = (typeof Reply)[keyof typeof Reply];

/** A raw script reply: the code, then string fields. */
export type ScriptReply = [number, ...string[]];
