-- holdWrite: the hold write every hold script shares, and the per-buyer cap check (needs includes/validate); the hold
-- HASH's fields and the idempotency record are documented in includes/holdCommon.
--
-- Functions:
--   checkCap:         {-7, ticketsStillAllowed} TICKET_LIMIT | nil
--   commitHold:       writes the hold, its expiry entry, the buyer's count, the idempotent reply and the
--                     BookingCreated outbox entry (with the Idempotency-Key and fingerprint when there is one);
--                     returns {1, bookingId, tierId, count, seats, expiresAtMs, createdAtMs}
local function checkCap(buyersKey, userId, count, maxPerUser)
  local have = tonumber(redis.call("HGET", buyersKey, userId) or "0")
  if have + count > maxPerUser then
    local left = maxPerUser - have
    if left < 0 then left = 0 end
    return {-7, tostring(left)}
  end
  return nil
end

local function commitHold(k, a)
  local expiresAt = a.nowMs + a.ttlMs
  redis.call("HSET", k.hold, "u", a.userId, "t", a.tierId, "n", a.count, "s", a.seats,
    "x", ms(expiresAt), "c", ms(a.nowMs), "st", "held", "p", a.pass)
  if a.pass ~= "" then redis.call("HSET", k.used, a.pass, a.bookingId) end
  redis.call("ZADD", k.expiry, ms(expiresAt), a.bookingId)
  redis.call("HINCRBY", k.buyers, a.userId, a.count)
  local fields = {a.bookingId, a.tierId, tostring(a.count), a.seats, ms(expiresAt), ms(a.nowMs)}
  if a.fingerprint ~= "" then
    redis.call("SET", k.idem, a.fingerprint .. "\n" .. table.concat(fields, "|"), "PX", a.idemTtlMs)
  end
  local entry = {"type", "BookingCreated", "eventId", a.eventId, "bookingId", a.bookingId, "userId", a.userId,
    "tierId", a.tierId, "count", a.count, "seats", a.seats, "expiresAtMs", ms(expiresAt), "atMs", ms(a.nowMs)}
  if a.fingerprint ~= "" then
    -- the entry keeps the key (passed in as ARGV, never read out of a key name) and fingerprint, so a rebuild can replay it
    table.insert(entry, "idemKey"); table.insert(entry, a.idemKey)
    table.insert(entry, "idemFp"); table.insert(entry, a.fingerprint)
  end
  redis.call("XADD", k.outbox, "*", unpack(entry))
  return {1, fields[1], fields[2], fields[3], fields[4], fields[5], fields[6]}
end
