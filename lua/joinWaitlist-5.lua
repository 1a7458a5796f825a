--[[
  joinWaitlist: put one buyer on a sold-out general-admission tier's waitlist, for a number of tickets.

  Invariants: a buyer is on one tier's waitlist at most once (joining again answers ALREADY_IN with the first
              place and count); the line is ordered by a per-event sequence (meta wlseq), never by a client's
              clock; while a tier's line is not empty, meta has wl:<tierId> = "1" and holdGeneral sells none of the
              tier's free tickets (they go to the line first: offerWaitlist); one can join only a tier with no free
              ticket left for general sale (free 0, or its line already open).

  Input:  KEYS[1] meta     HASH  armed, maxPerUser, wlseq, wl:<tierId>
          KEYS[2] inv      HASH  kind:/free:<tierId>
          KEYS[3] buyers   HASH  userId -> tickets held + bought
          KEYS[4] line     ZSET  this tier's waitlist: userId -> join sequence
          KEYS[5] want     HASH  this tier's waitlist: userId -> "<count>|<e-mail>"
          ARGV[1] userId   ARGV[2] tierId   ARGV[3] count (1..1000)   ARGV[4] e-mail address (where the offer goes)

  Output: {1, position} JOINED | {2, position, count} ALREADY_IN (the first join's place and count; nothing written)
          {-1} NOT_ARMED | {-3} UNKNOWN_TIER | {-9} TIER_KIND (seated: no waitlist)
          {-7, ticketsStillAllowed} TICKET_LIMIT (the buyer's held + bought + count would pass maxPerUser)
          {-50, available} NOT_SOLD_OUT (tickets are on general sale: buy them instead)

  Idempotent: joining again answers ALREADY_IN and writes nothing.
]]
--- @include "includes/validate"
--- @include "includes/holdWrite"

local userId = needId(ARGV[1], "userId")
local tierId = needId(ARGV[2], "tierId")
local count = needInt(ARGV[3], "count", 1, 1000)
local email = ARGV[4] or ""
if #email < 3 or #email > 254 or not string.find(email, "@", 1, true) then error("ERR bad argument email") end
local k = {meta = KEYS[1], inv = KEYS[2], buyers = KEYS[3], line = KEYS[4], want = KEYS[5]}

local m = redis.call("HMGET", k.meta, "armed", "maxPerUser", "wl:" .. tierId)
if m[1] ~= "1" then return {-1} end
local kind = redis.call("HGET", k.inv, "kind:" .. tierId)
if not kind then return {-3} end
if kind ~= "ga" then return {-9} end
local rank = redis.call("ZRANK", k.line, userId)
if rank then
  local wanted = string.match(redis.call("HGET", k.want, userId) or "", "^(%d+)|")
  return {2, rank + 1, wanted or "0"}
end
local free = tonumber(redis.call("HGET", k.inv, "free:" .. tierId))
if free > 0 and m[3] ~= "1" then return {-50, tostring(free)} end
local err = checkCap(k.buyers, userId, count, tonumber(m[2]))
if err then return err end

local seq = redis.call("HINCRBY", k.meta, "wlseq", 1)
redis.call("ZADD", k.line, seq, userId)
redis.call("HSET", k.want, userId, count .. "|" .. email)
redis.call("HSET", k.meta, "wl:" .. tierId, "1")
return {1, redis.call("ZCARD", k.line)}
