--[[
  confirmHold: turn a live hold into a sale (held -> sold) once its payment succeeded.

  Invariants: only a live hold (nowMs < expiresAtMs) is confirmed; cap == free + held + sold;
              a sold hold is kept (state "sold", no expiry entry) so a repeat is recognised;
              the sale and its BookingConfirmed outbox entry are atomic.

  Input:  KEYS[1] inv      HASH  cap:/free:/held:/sold:<tier>
          KEYS[2] sec      HASH  section -> "tierId,rows,seatsPerRow"
          KEYS[3] smap     HASH  section -> seat characters
          KEYS[4] hold     HASH  the booking's hold (fields: includes/holdCommon)
          KEYS[5] expiry   ZSET  bookingId scored by expiresAtMs
          KEYS[6] outbox   STREAM domain events of this event
          ARGV[1] eventId   ARGV[2] bookingId   ARGV[3] nowMs   ARGV[4] paymentRef ("" if none)

  Output: {1, tierId, count, seats} CONFIRMED | {3, tierId, count, seats} ALREADY_CONFIRMED
          {-20} HOLD_NOT_FOUND | {-23, expiresAtMs} HOLD_EXPIRED (left for the sweeper)

  Idempotent: a repeat answers ALREADY_CONFIRMED and writes nothing.
]]
--- @include "includes/validate"
--- @include "includes/seatMap"

local eventId = needId(ARGV[1], "eventId")
local bookingId = needId(ARGV[2], "bookingId")
local nowMs = nowArg(ARGV[3], "nowMs")
local paymentRef = ARGV[4] or ""
local k = {inv = KEYS[1], sec = KEYS[2], smap = KEYS[3], hold = KEYS[4], expiry = KEYS[5], outbox = KEYS[6]}

local h = redis.call("HMGET", k.hold, "u", "t", "n", "s", "x", "st")
if not h[1] then return {-20} end
if h[6] == "sold" then return {3, h[2], h[3], h[4]} end
if nowMs >= tonumber(h[5]) then return {-23, h[5]} end

moveHoldSeats(k, h[2], tonumber(h[3]), h[4], "held", "sold", "s")
redis.call("ZREM", k.expiry, bookingId)
redis.call("HSET", k.hold, "st", "sold")
redis.call("XADD", k.outbox, "*", "type", "BookingConfirmed", "eventId", eventId, "bookingId", bookingId,
  "userId", h[1], "tierId", h[2], "count", h[3], "seats", h[4], "paymentRef", paymentRef, "atMs", ms(nowMs))
return {1, h[2], h[3], h[4]}
