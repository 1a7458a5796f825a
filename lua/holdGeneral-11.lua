--[[
  holdGeneral: hold N general-admission tickets of one tier for one buyer until nowMs + ttlMs.

  Invariants: for every tier, cap == free + held + sold and no counter goes below zero;
              a buyer's held + bought tickets never exceed the event's maxPerUser;
              a hold and its BookingCreated outbox entry are written together or not at all.
              the rate-limit counters (KEYS[10], KEYS[11]) count every call, refused ones too (includes/rateLimit).

  Input:  KEYS[1] meta     HASH  armed, opensAt, maxPerUser, pass:<member> (the size of a sized admission pass),
                                wl:<tierId> ("1" while the tier has a waitlist: its free tickets go to the line first,
                                so general sale sees none; lua/offerWaitlist)
          KEYS[2] inv      HASH  kind:<tier> "ga"|"seated", cap:/free:/held:/sold:<tier> counts
          KEYS[3] hold     HASH  of this booking (must not exist yet)
          KEYS[4] expiry   ZSET  bookingId scored by expiresAtMs (the sweeper's source of truth)
          KEYS[5] buyers   HASH  userId -> tickets held + bought
          KEYS[6] idem     STRING first reply for this buyer's Idempotency-Key (format: includes/holdCommon)
          KEYS[7] outbox   STREAM domain events of this event
          KEYS[8] passes   ZSET  waiting-room admission passes: member -> expiresAtMs
          KEYS[9] used     HASH  pass member -> bookingId of its live hold or sale (one pass, one live hold)
          KEYS[10] rlUser  STRING this buyer's hold requests in the window   KEYS[11] rlIp  STRING the client address's
          ARGV[1] eventId     ARGV[2] bookingId   ARGV[3] userId   ARGV[4] tierId
          ARGV[5] count (1..1000)                 ARGV[6] nowMs    ARGV[7] ttlMs
          ARGV[8] fingerprint of the request ("" = no Idempotency-Key)   ARGV[9] idemTtlMs
          ARGV[10] admission pass member ("" = none; required when meta.admission is "1")
          ARGV[11] the Idempotency-Key itself ("" = none), kept in the BookingCreated entry so a rebuild can replay it
          ARGV[12] rate limits "<perUser>,<perIp>,<windowMs>" (0 = off; "" = none), counted first (includes/rateLimit)

  Output: {1, bookingId, tierId, count, "", expiresAtMs, createdAtMs}   HELD
          {2, <the same fields as the first reply>}                       REPLAYED
          {-1} NOT_ARMED | {-2, opensAtMs} SALES_NOT_OPEN | {-3} UNKNOWN_TIER | {-9} TIER_KIND (tier is seated)
          {-4, available} INSUFFICIENT | {-7, ticketsStillAllowed} TICKET_LIMIT | {-8} IDEMPOTENCY_MISMATCH
          {-33} NOT_ADMITTED (waiting-room event, no live admission pass) | {-34} PASS_IN_USE (the pass has a live hold or a sale)
          {-37, passTickets} PASS_LIMIT (more tickets than the sized admission pass allows)
          {-40, retryAfterMs} RATE_LIMITED (over a limit of ARGV[12]; only the counters changed)

  Idempotent: a call with the same KEYS[6] and fingerprint returns the first reply and writes nothing;
              rejections store nothing, so a retry of a rejected call is evaluated afresh.
]]
--- @include "includes/validate"
--- @include "includes/holdCommon"
--- @include "includes/rateLimit"

local a = {
  eventId = needId(ARGV[1], "eventId"), bookingId = needId(ARGV[2], "bookingId"),
  userId = needId(ARGV[3], "userId"), tierId = needId(ARGV[4], "tierId"),
  count = needInt(ARGV[5], "count", 1, 1000), nowMs = nowArg(ARGV[6], "nowMs"),
  ttlMs = needInt(ARGV[7], "ttlMs", 1, 1e10), fingerprint = ARGV[8] or "",
  idemTtlMs = needInt(ARGV[9], "idemTtlMs", 1, 1e10), seats = "", pass = ARGV[10] or "",
  idemKey = ARGV[11] or "",
}
local k = {meta = KEYS[1], inv = KEYS[2], hold = KEYS[3], expiry = KEYS[4], buyers = KEYS[5],
           idem = KEYS[6], outbox = KEYS[7], passes = KEYS[8], used = KEYS[9]}

local limited = rateLimited(KEYS[10], KEYS[11], ARGV[12]) if limited then return limited end
local err, maxPerUser = checkHoldStart(k, a)
if err then return err end

local kind = redis.call("HGET", k.inv, "kind:" .. a.tierId)
if not kind then return {-3} end
if kind ~= "ga" then return {-9} end
local free = tonumber(redis.call("HGET", k.inv, "free:" .. a.tierId))
if redis.call("HEXISTS", k.meta, "wl:" .. a.tierId) == 1 then free = 0 end
if free < a.count then return {-4, tostring(free)} end
err = checkCap(k.buyers, a.userId, a.count, maxPerUser)
if err then return err end
if redis.call("EXISTS", k.hold) == 1 then error("ERR booking id already used") end

redis.call("HINCRBY", k.inv, "free:" .. a.tierId, -a.count)
redis.call("HINCRBY", k.inv, "held:" .. a.tierId, a.count)
return commitHold(k, a)
