--[[
  expireHold: the sweeper's step for one hold it read as due. Re-checks the due time inside the script, so
  a hold extended or released since the read is left alone and two sweepers expire a hold only once.

  Invariants: a hold is live iff nowMs < expiresAtMs (its expiry score); cap == free + held + sold;
              the release and its ReservationExpired outbox entry are atomic.

  Input:  KEYS[1] inv      HASH  cap:/free:/held:/sold:<tier>
          KEYS[2] sec      HASH  section -> "tierId,rows,seatsPerRow"
          KEYS[3] smap     HASH  section -> seat characters
          KEYS[4] hold     HASH  the booking's hold (fields: includes/holdCommon)
          KEYS[5] expiry   ZSET  bookingId scored by expiresAtMs
          KEYS[6] buyers   HASH  userId -> tickets held + bought
          KEYS[7] outbox   STREAM domain events of this event
          KEYS[8] used     HASH  pass member -> bookingId (the hold's pass becomes usable again)
          ARGV[1] eventId   ARGV[2] bookingId   ARGV[3] nowMs

  Output: {1, tierId, count, seats} EXPIRED
          {0, expiresAtMs} NOT_DUE | {-20} HOLD_NOT_FOUND (no expiry entry; a stray entry without a hold is removed)
          {-22, state} NOT_RELEASABLE (the hold is sold; its expiry entry is removed)

  Idempotent: a second call finds no expiry entry and answers HOLD_NOT_FOUND, writing nothing.
]]
--- @include "includes/validate"
--- @include "includes/seatMap"

local eventId = needId(ARGV[1], "eventId")
local bookingId = needId(ARGV[2], "bookingId")
local nowMs = nowArg(ARGV[3], "nowMs")
local k = {inv = KEYS[1], sec = KEYS[2], smap = KEYS[3], hold = KEYS[4], expiry = KEYS[5], buyers = KEYS[6],
           outbox = KEYS[7], used = KEYS[8]}

local due = redis.call("ZSCORE", k.expiry, bookingId)
if not due then return {-20} end
if tonumber(due) > nowMs then return {0, due} end
local h = redis.call("HMGET", k.hold, "u", "t", "n", "s", "x", "st", "p")
if not h[1] then
  redis.call("ZREM", k.expiry, bookingId)
  return {-20}
end
if h[6] == "sold" then
  redis.call("ZREM", k.expiry, bookingId)
  return {-22, h[6]}
end

local count = tonumber(h[3])
moveHoldSeats(k, h[2], count, h[4], "held", "free", ".")
redis.call("ZREM", k.expiry, bookingId)
if redis.call("HINCRBY", k.buyers, h[1], -count) <= 0 then redis.call("HDEL", k.buyers, h[1]) end
redis.call("DEL", k.hold)
if h[7] and h[7] ~= "" and redis.call("HGET", k.used, h[7]) == bookingId then redis.call("HDEL", k.used, h[7]) end
redis.call("XADD", k.outbox, "*", "type", "ReservationExpired", "eventId", eventId, "bookingId", bookingId,
  "userId", h[1], "tierId", h[2], "count", count, "seats", h[4], "atMs", ms(nowMs))
return {1, h[2], h[3], h[4]}
