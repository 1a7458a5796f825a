--[[
  payHold: a payment attempt starts on a live hold ("start": held -> paying, the attempt counter incremented, the
  deadline pushed to at least nowMs + windowMs so the hold outlives the charge), or a declined attempt hands it back
  ("decline": paying -> held). Each appends its outbox entry (PaymentStarted, PaymentDeclined) in the same step, so
  Postgres learns of the attempt in stream order without the payment writing the booking.

  Invariants: only the owner's live, unpaid hold starts a payment, and at most maxAttempts times (field "a" counts the
              attempts, 1-based; it only grows); a hold being paid cannot be cancelled by its buyer (releaseHold allows
              "held" only) but still expires at its (extended) deadline; only the attempt that is running is declined,
              so a stale decline (a settle job of an older attempt) never hands back a newer attempt's hold.

  Input:  KEYS[1] hold     HASH  the booking's hold (fields: includes/holdCommon)
          KEYS[2] expiry   ZSET  bookingId scored by expiresAtMs
          KEYS[3] outbox   STREAM domain events of this event
          ARGV[1] eventId   ARGV[2] bookingId   ARGV[3] userId ("" = the system)   ARGV[4] nowMs   ARGV[5] windowMs
          ARGV[6] mode "start" | "decline"
          ARGV[7] start: maxAttempts | decline: the attempt declined
          ARGV[8] decline: reason ("" on start)
          ARGV[9] holderName   ARGV[10] holderEmail   ARGV[11] holderPhone   (start; "" = not given)

  Output: {1, expiresAtMs, attempt} DONE | {-20} HOLD_NOT_FOUND | {-21} NOT_OWNER
          {-22, state} NOT_RELEASABLE (start: not "held"; decline: not "paying", e.g. declined already)
          {-23, expiresAtMs} HOLD_EXPIRED | {-25, attempts} NO_ATTEMPTS_LEFT (start) | {-26, attempt} OTHER_ATTEMPT (decline)

  Idempotent: no for "start" (a second start answers NOT_RELEASABLE "paying": the caller carries the running attempt
              on); "decline" twice answers NOT_RELEASABLE "held" (or OTHER_ATTEMPT once a new one started), writing nothing.
]]
--- @include "includes/validate"

local eventId = needId(ARGV[1], "eventId")
local bookingId = needId(ARGV[2], "bookingId")
local userId = optId(ARGV[3], "userId")
local nowMs = nowArg(ARGV[4], "nowMs")
local windowMs = needInt(ARGV[5], "windowMs", 0, 1e9)
local mode = ARGV[6]
if mode ~= "start" and mode ~= "decline" then error("ERR bad argument mode") end
local n = needInt(ARGV[7], "attempt", 1, 1000)

local h = redis.call("HMGET", KEYS[1], "u", "x", "st", "a", "t", "n", "s")
if not h[1] then return {-20} end
if userId ~= "" and h[1] ~= userId then return {-21} end
local attempts = tonumber(h[4] or "0") or 0
local function entry(type, attempt, extra)
  local e = {"type", type, "eventId", eventId, "bookingId", bookingId, "userId", h[1], "tierId", h[5], "count", h[6],
    "seats", h[7], "attempt", attempt, "atMs", ms(nowMs)}
  for _, v in ipairs(extra) do e[#e + 1] = v end
  redis.call("XADD", KEYS[3], "*", unpack(e))
end

if mode == "decline" then
  if attempts ~= n then return {-26, tostring(attempts)} end
  if h[3] ~= "paying" then return {-22, h[3]} end
  redis.call("HSET", KEYS[1], "st", "held")
  entry("PaymentDeclined", n, {"reason", ARGV[8] or ""})
  return {1, h[2], tostring(n)}
end
if h[3] ~= "held" then return {-22, h[3]} end
if nowMs >= tonumber(h[2]) then return {-23, h[2]} end
if attempts >= n then return {-25, tostring(attempts)} end
local attempt = attempts + 1
local expiresAt = math.max(tonumber(h[2]), nowMs + windowMs)
redis.call("HSET", KEYS[1], "st", "paying", "x", ms(expiresAt), "a", attempt)
redis.call("ZADD", KEYS[2], ms(expiresAt), bookingId)
entry("PaymentStarted", attempt, {"holderName", ARGV[9] or "", "holderEmail", ARGV[10] or "", "holderPhone", ARGV[11] or ""})
return {1, ms(expiresAt), tostring(attempt)}
