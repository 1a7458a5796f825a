--[[
  releaseHold: give a live hold's tickets back to stock before it expires (buyer cancel, or the system
  compensating a booking that Postgres refused).

  Invariants: cap == free + held + sold; only a hold in one of the allowed states is released; a buyer
              may release only their own hold, and only while it is live (nowMs < expiresAtMs);
              the release and its outbox entry are atomic.

  Input:  KEYS[1] inv      HASH  cap:/free:/held:/sold:<tier>
          KEYS[2] sec      HASH  section -> "tierId,rows,seatsPerRow"
          KEYS[3] smap     HASH  section -> seat characters
          KEYS[4] hold     HASH  the booking's hold (fields: includes/holdCommon)
          KEYS[5] expiry   ZSET  bookingId scored by expiresAtMs
          KEYS[6] buyers   HASH  userId -> tickets held + bought
          KEYS[7] outbox   STREAM domain events of this event
          KEYS[8] used     HASH  pass member -> bookingId (the hold's pass becomes usable again)
          ARGV[1] eventId   ARGV[2] bookingId   ARGV[3] userId ("" = the system, skips owner and expiry checks)
          ARGV[4] nowMs     ARGV[5] eventType (BookingCancelled | BookingFailed)   ARGV[6] reason
          ARGV[7] allowed hold states, comma separated (e.g. "held")

  Output: {1, tierId, count, seats} RELEASED
          {-20} HOLD_NOT_FOUND | {-21} NOT_OWNER | {-22, state} NOT_RELEASABLE | {-23, expiresAtMs} HOLD_EXPIRED

  Idempotent: a second call finds no hold and answers HOLD_NOT_FOUND, writing nothing.
]]
--- @include "includes/validate"
--- @include "includes/seatMap"

local eventId = needId(ARGV[1], "eventId")
local bookingId = needId(ARGV[2], "bookingId")
local userId = optId(ARGV[3], "userId")
local nowMs = nowArg(ARGV[4], "nowMs")
local eventType = ARGV[5]
if eventType ~= "BookingCancelled" and eventType ~= "BookingFailed" then error("ERR bad argument eventType") end
local reason = ARGV[6] or ""
local allowed = {}
for _, s in ipairs(split(ARGV[7] or "", ",")) do allowed[s] = true end
local k = {inv = KEYS[1], sec = KEYS[2], smap = KEYS[3], hold = KEYS[4], expiry = KEYS[5], buyers = KEYS[6],
           outbox = KEYS[7], used = KEYS[8]}

local h = redis.call("HMGET", k.hold, "u", "t", "n", "s", "x", "st", "p")
if not h[1] then return {-20} end
if userId ~= "" and h[1] ~= userId then return {-21} end
if not allowed[h[6]] then return {-22, h[6]} end
if userId ~= "" and nowMs >= tonumber(h[5]) then return {-23, h[5]} end

local count = tonumber(h[3])
moveHoldSeats(k, h[2], count, h[4], "held", "free", ".")
redis.call("ZREM", k.expiry, bookingId)
if redis.call("HINCRBY", k.buyers, h[1], -count) <= 0 then redis.call("HDEL", k.buyers, h[1]) end
redis.call("DEL", k.hold)
if h[7] and h[7] ~= "" and redis.call("HGET", k.used, h[7]) == bookingId then redis.call("HDEL", k.used, h[7]) end
redis.call("XADD", k.outbox, "*", "type", eventType, "eventId", eventId, "bookingId", bookingId,
  "userId", h[1], "tierId", h[2], "count", count, "seats", h[4], "reason", reason, "atMs", ms(nowMs))
return {1, h[2], h[3], h[4]}
