--[[
  payHold: a payment starts on a live hold ("start": held -> paying, the deadline pushed to at least
  nowMs + windowMs so the hold outlives the charge), or a declined payment hands it back ("decline": paying -> held).

  Invariants: only the owner's live, unpaid hold starts a payment; a hold being paid cannot be cancelled by its
              buyer (releaseHold allows "held" only) but still expires at its (extended) deadline.

  Input:  KEYS[1] hold     HASH  the booking's hold (fields: includes/holdCommon)
          KEYS[2] expiry   ZSET  bookingId scored by expiresAtMs
          ARGV[1] bookingId   ARGV[2] userId ("" = the system)   ARGV[3] nowMs   ARGV[4] windowMs
          ARGV[5] mode "start" | "decline"

  Output: {1, expiresAtMs} DONE | {-20} HOLD_NOT_FOUND | {-21} NOT_OWNER | {-22, state} NOT_RELEASABLE (wrong state)
          {-23, expiresAtMs} HOLD_EXPIRED

  Idempotent: no for "start" (a second start answers NOT_RELEASABLE "paying"); "decline" twice answers NOT_RELEASABLE.
]]
--- @include "includes/validate"

local bookingId = needId(ARGV[1], "bookingId")
local userId = optId(ARGV[2], "userId")
local nowMs = nowArg(ARGV[3], "nowMs")
local windowMs = needInt(ARGV[4], "windowMs", 0, 1e9)
local mode = ARGV[5]
if mode ~= "start" and mode ~= "decline" then error("ERR bad argument mode") end

local h = redis.call("HMGET", KEYS[1], "u", "x", "st")
if not h[1] then return {-20} end
if userId ~= "" and h[1] ~= userId then return {-21} end
if mode == "decline" then
  if h[3] ~= "paying" then return {-22, h[3]} end
  redis.call("HSET", KEYS[1], "st", "held")
  return {1, h[2]}
end
if h[3] ~= "held" then return {-22, h[3]} end
if nowMs >= tonumber(h[2]) then return {-23, h[2]} end
local expiresAt = math.max(tonumber(h[2]), nowMs + windowMs)
redis.call("HSET", KEYS[1], "st", "paying", "x", ms(expiresAt))
redis.call("ZADD", KEYS[2], ms(expiresAt), bookingId)
return {1, ms(expiresAt)}
