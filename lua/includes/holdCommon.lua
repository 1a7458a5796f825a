-- holdCommon: the steps every hold script shares (needs includes/validate).
--
-- The hold HASH ({evt:E}:hold:<bookingId>), written here and by restoreHold/retakeHold, read by every hold script.
-- Its fields are one letter each (they are stored once per live hold and read on the hot path); the codec
-- engine/holds/hold-record.ts is the only TypeScript that maps them to names, and lua/commands.test.ts checks that
-- this table and that codec agree and that no script uses another field:
--   u  userId        t  tierId        n  ticketCount   s  seats ("A-1-1,A-1-2"; "" for general admission)
--   x  expiresAtMs   c  createdAtMs   st  state ("held" | "paying" | "sold")
--   p  pass (the admission pass member; "" = none)
--   a  attempts (payment attempts started, 1-based; absent = 0; only payHold "start" increments it)
--
-- The idempotency record (KEYS idem, one per buyer and Idempotency-Key): its format is written down once, in
-- engine/idempotency.ts ("hold scripts' record"); replayIdempotent reads it and commitHold writes it.
--
-- Functions:
--   replayIdempotent: a stored first reply for this key -> {2, fields...} if the fingerprint matches,
--                     {-8} (IDEMPOTENCY_MISMATCH) if not, nil if the key is new or the caller sent none.
--   checkSale:        {-1} NOT_ARMED | {-2, opensAtMs} SALES_NOT_OPEN | nil, maxPerUser, admissionRequired
--   checkPass:        on a waiting-room event: {-33} NOT_ADMITTED (no live pass) | {-34} PASS_IN_USE (the pass
--                     already has a live hold or a sale) | {-37, passTickets} PASS_LIMIT (more tickets than a sized
--                     pass allows: admitNext keeps k in meta as pass:<member> when it admits for fewer than a full
--                     pass) | nil
--   checkHoldStart:   replayIdempotent, checkSale, then checkPass on a waiting-room event (a.pass cleared on others):
--                     the first non-nil reply | nil, maxPerUser
--   checkCap, commitHold: includes/holdWrite (also used by the waitlist scripts, which make no sale checks)
--- @include "includes/holdWrite"
local function replayIdempotent(idemKey, fingerprint)
  if fingerprint == "" then return nil end
  local stored = redis.call("GET", idemKey)
  if not stored then return nil end
  local sep = string.find(stored, "\n", 1, true)
  if string.sub(stored, 1, sep - 1) ~= fingerprint then return {-8} end
  local reply = {2}
  for _, f in ipairs(split(string.sub(stored, sep + 1), "|")) do reply[#reply + 1] = f end
  return reply
end

local function checkSale(metaKey, nowMs)
  local m = redis.call("HMGET", metaKey, "armed", "opensAt", "maxPerUser", "admission")
  if m[1] ~= "1" then return {-1} end
  if nowMs < tonumber(m[2]) then return {-2, m[2]} end
  return nil, tonumber(m[3]), m[4] == "1"
end

local function checkPass(passesKey, usedKey, pass, nowMs, metaKey, count)
  if pass == "" then return {-33} end
  local expires = redis.call("ZSCORE", passesKey, pass)
  if not expires or tonumber(expires) <= nowMs then return {-33} end
  if redis.call("HEXISTS", usedKey, pass) == 1 then return {-34} end
  local size = redis.call("HGET", metaKey, "pass:" .. pass)
  if size and count > tonumber(size) then return {-37, size} end
  return nil
end

-- The checks every hold script makes after its rate limit, in this order: a replay of the same Idempotency-Key
-- answers with the first reply; the sale must be armed and open; on a waiting-room event the admission pass must be
-- live, unused and big enough for a.count (on any other event a.pass is cleared). Returns a reply to return as it
-- is, or nil and the event's maxPerUser.
local function checkHoldStart(k, a)
  local replay = replayIdempotent(k.idem, a.fingerprint)
  if replay then return replay end
  local err, maxPerUser, admission = checkSale(k.meta, a.nowMs)
  if err then return err end
  if admission then
    err = checkPass(k.passes, k.used, a.pass, a.nowMs, k.meta, a.count)
    if err then return err end
  else
    a.pass = ""
  end
  return nil, maxPerUser
end
