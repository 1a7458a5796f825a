-- rateLimit: fixed-window request limits counted in Redis (needs includes/validate). The hold scripts call
-- rateLimited first, so a hold and its rate-limit check are one Redis round trip; lua/rateLimit-1.lua counts the
-- other groups (pay, join, status) and the hold requests refused before their script ran.
--
-- A counter is a STRING (KEYS built in engine/keys.ts) holding the requests of the current window; the first
-- request of a window sets PX windowMs. Every request counts, refused ones too (as rate-limiter-flexible's
-- RateLimiterRedis counted, which this replaces): the counter is the one write a refused call makes.
--
-- Functions:
--   countRequest: +1 on one counter -> the ms until its window ends when the count is over `points`, else nil
--   rateLimited:  counts a buyer's and a client address's counters; limits "<perUser>,<perIp>,<windowMs>" (0 = that
--                 limit is off and its key is not touched; "" = no limits at all) -> {-40, retryAfterMs} | nil
local function countRequest(key, points, windowMs)
  local n = redis.call("INCR", key)
  local left = -1
  if n > 1 then left = redis.call("PTTL", key) end
  if left < 0 then
    redis.call("PEXPIRE", key, windowMs)
    left = windowMs
  end
  if n > points then return math.max(left, 1) end
  return nil
end

local function rateLimited(userKey, ipKey, limits)
  if limits == nil or limits == "" then return nil end
  local f = split(limits, ",")
  local perUser, perIp = needInt(f[1], "perUser", 0, 1e9), needInt(f[2], "perIp", 0, 1e9)
  local windowMs = needInt(f[3], "windowMs", 1, 1e10)
  local wait = 0
  if perUser > 0 then wait = math.max(wait, countRequest(userKey, perUser, windowMs) or 0) end
  if perIp > 0 then wait = math.max(wait, countRequest(ipKey, perIp, windowMs) or 0) end
  if wait > 0 then return {-40, tostring(wait)} end
  return nil
end
