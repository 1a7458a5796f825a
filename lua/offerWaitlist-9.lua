--[[
  offerWaitlist: offer a tier's free tickets to the first buyer on its waitlist, as a hold owned by that buyer
  (the same hold record, expiry entry, buyer count and BookingCreated outbox entry as every hold: includes/holdCommon).

  Invariants: cap == free + held + sold (free -> held, as holdGeneral); a buyer's held + bought tickets never exceed
              maxPerUser (the offer is cut to what the buyer may still have; a buyer who may have none leaves the
              line with nothing); the line is served in order, one buyer per call, each offered min(asked, free);
              a buyer leaves the line with the offer; when the line is empty, meta wl:<tierId> is removed and the
              tier's free tickets are on general sale again (so a returned ticket goes either to an offer or to
              general sale, never both: holdGeneral sells none while wl:<tierId> is set).

  Input:  KEYS[1] meta     HASH  armed, maxPerUser, wl:<tierId>
          KEYS[2] inv      HASH  kind:/free:/held:<tierId>
          KEYS[3] line     ZSET  this tier's waitlist: userId -> join sequence
          KEYS[4] want     HASH  this tier's waitlist: userId -> "<count>|<e-mail>"
          KEYS[5] offers   HASH  bookingId -> "<userId>|<tierId>|<count>|<expiresAtMs>|<e-mail>" (open offers)
          KEYS[6] hold     HASH  of the new booking (must not exist yet)
          KEYS[7] expiry   ZSET  bookingId scored by expiresAtMs
          KEYS[8] buyers   HASH  userId -> tickets held + bought
          KEYS[9] outbox   STREAM domain events of this event
          ARGV[1] eventId   ARGV[2] bookingId (used only when an offer is made)   ARGV[3] tierId
          ARGV[4] nowMs     ARGV[5] ttlMs (how long the offer lasts)

  Output: {1, bookingId, userId, count, expiresAtMs, email} OFFERED
          {0} LINE_EMPTY (no one waits: the tier is on general sale; wl:<tierId> removed)
          {-1} NOT_ARMED | {-4, "0"} NOTHING_FREE (no free ticket to offer: nothing written)
          {-7, userId} SKIPPED (the first buyer may hold no more tickets: removed from the line, no offer)

  Idempotent: no (each OFFERED takes a new bookingId); a call with nothing to do writes nothing.
]]
--- @include "includes/validate"
--- @include "includes/holdWrite"

local a = {
  eventId = needId(ARGV[1], "eventId"), bookingId = needId(ARGV[2], "bookingId"), tierId = needId(ARGV[3], "tierId"),
  nowMs = nowArg(ARGV[4], "nowMs"), ttlMs = needInt(ARGV[5], "ttlMs", 1, 1e10),
  fingerprint = "", seats = "", pass = "", idemKey = "",
}
local k = {meta = KEYS[1], inv = KEYS[2], line = KEYS[3], want = KEYS[4], offers = KEYS[5], hold = KEYS[6],
           expiry = KEYS[7], buyers = KEYS[8], outbox = KEYS[9]}

local m = redis.call("HMGET", k.meta, "armed", "maxPerUser")
if m[1] ~= "1" then return {-1} end
local head = redis.call("ZRANGE", k.line, 0, 0)[1]
if not head then
  redis.call("HDEL", k.meta, "wl:" .. a.tierId)
  return {0}
end
local free = tonumber(redis.call("HGET", k.inv, "free:" .. a.tierId) or "0")
if free < 1 then return {-4, "0"} end

local function leaveLine()
  redis.call("ZREM", k.line, head)
  redis.call("HDEL", k.want, head)
  if redis.call("ZCARD", k.line) == 0 then redis.call("HDEL", k.meta, "wl:" .. a.tierId) end
end
local wanted, email = string.match(redis.call("HGET", k.want, head) or "", "^(%d+)|(.*)$")
local have = tonumber(redis.call("HGET", k.buyers, head) or "0")
local count = math.min(tonumber(wanted or "0"), free, tonumber(m[2]) - have)
if count < 1 then
  leaveLine()
  return {-7, head}
end
if redis.call("EXISTS", k.hold) == 1 then error("ERR booking id already used") end

a.userId, a.count = head, count
redis.call("HINCRBY", k.inv, "free:" .. a.tierId, -count)
redis.call("HINCRBY", k.inv, "held:" .. a.tierId, count)
local r = commitHold(k, a)
leaveLine()
redis.call("HSET", k.offers, a.bookingId, head .. "|" .. a.tierId .. "|" .. count .. "|" .. r[6] .. "|" .. email)
return {1, a.bookingId, head, tostring(count), r[6], email}
