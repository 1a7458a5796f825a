--[[
  refundHold: a refunded booking gives its sold tickets back to stock (seats free again, the buyer's count lowered).

  Invariants: cap == free + held + sold; only a sold hold is refunded; the release and its BookingRefunded outbox
              entry are atomic.

  Input:  KEYS[1] inv      HASH  free:/held:/sold:<tier>
          KEYS[2] sec      HASH  section -> "tierId,rows,seatsPerRow"
          KEYS[3] smap     HASH  section -> seat characters
          KEYS[4] hold     HASH  of the booking (state "sold")
          KEYS[5] buyers   HASH  userId -> tickets held + bought
          KEYS[6] outbox   STREAM domain events of this event
          ARGV[1] eventId   ARGV[2] bookingId   ARGV[3] nowMs   ARGV[4] reason

  Output: {1, tierId, count, seats} RELEASED | {-20} HOLD_NOT_FOUND | {-22, state} NOT_RELEASABLE (not sold)

  Idempotent: a second call finds no hold and answers HOLD_NOT_FOUND, writing nothing.
]]
--- @include "includes/validate"
--- @include "includes/seatMap"

local eventId = needId(ARGV[1], "eventId")
local bookingId = needId(ARGV[2], "bookingId")
local nowMs = nowArg(ARGV[3], "nowMs")
local reason = ARGV[4] or ""
local k = {inv = KEYS[1], sec = KEYS[2], smap = KEYS[3], hold = KEYS[4], buyers = KEYS[5], outbox = KEYS[6]}

local h = redis.call("HMGET", k.hold, "u", "t", "n", "s", "st")
if not h[1] then return {-20} end
if h[5] ~= "sold" then return {-22, h[5]} end
local count = tonumber(h[3])
moveHoldSeats(k, h[2], count, h[4], "sold", "free", ".")
if redis.call("HINCRBY", k.buyers, h[1], -count) <= 0 then redis.call("HDEL", k.buyers, h[1]) end
redis.call("DEL", k.hold)
redis.call("XADD", k.outbox, "*", "type", "BookingRefunded", "eventId", eventId, "bookingId", bookingId,
  "userId", h[1], "tierId", h[2], "count", count, "seats", h[4], "reason", reason, "atMs", ms(nowMs))
return {1, h[2], h[3], h[4]}
