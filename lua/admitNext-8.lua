--[[
  admitNext: one tick of the admission worker. Expires unused passes (their slots come back), then admits people
  from the head of the order (the drawn "pre" lane, then the "line" lane) at most maxAdmit at a time, and never
  more than the stock can serve.

  Invariants: (passes without a hold) x ticketsPerPass <= available + held, after every call;
              admission follows the lane order exactly (leavers skipped); nobody is admitted before the sale opens.

  Input:  KEYS[1] cfg     HASH  settings, cursors, admitted counter
          KEYS[2] pre     ZSET  drawn arrivals before the sale opened
          KEYS[3] line    ZSET  arrivals after, in order
          KEYS[4] passes  ZSET  member -> pass expiresAtMs
          KEYS[5] used    HASH  pass member -> bookingId of its live hold or sale
          KEYS[6] done    HASH  member -> "expired" | "left"
          KEYS[7] inv     HASH  free:/held:<tier> counters
          KEYS[8] joined  HASH  member -> joinedAtMs (read only: the admitted people's waits are returned)
          ARGV[1] nowMs   ARGV[2] maxAdmit (0..10000, from the rate ceiling and the time since the last tick)

  Output: {1, admitted, expired, free, held, outstanding, waiting, wait1Ms, wait2Ms, ...} TICKED, one waitMs per person
          admitted (nowMs - joinedAtMs; places taken before joinedAt was recorded are left out)
          | {0} IDLE (disabled, closed or not open)

  Idempotent: no; each call moves the cursor. Calls are serialized by Redis, so two workers never admit the
  same person twice.
]]
--- @include "includes/validate"
--- @include "includes/stockTotals"

local nowMs = nowArg(ARGV[1], "nowMs")
local maxAdmit = needInt(ARGV[2], "maxAdmit", 0, 10000)
local c = redis.call("HMGET", KEYS[1], "enabled", "closed", "salesAt", "passTtlMs", "tpp", "cursorPre", "cursorLine", "admitted")
if c[1] ~= "1" or c[2] == "1" or nowMs < tonumber(c[3]) then return {0} end
local passTtl, tpp = tonumber(c[4]), tonumber(c[5])
local cursors = {tonumber(c[6]), tonumber(c[7])}

-- unused passes that ran out give their slot back
local expired = redis.call("ZRANGEBYSCORE", KEYS[4], "-inf", nowMs, "LIMIT", 0, 1000)
for _, m in ipairs(expired) do
  redis.call("ZREM", KEYS[4], m)
  redis.call("HDEL", KEYS[5], m)
  redis.call("HSET", KEYS[6], m, "expired")
end

local free, held = stockTotals(KEYS[7])
local outstanding = redis.call("ZCARD", KEYS[4]) - redis.call("HLEN", KEYS[5])
local room = math.floor((free + held) / tpp) - outstanding
local want = math.min(maxAdmit, math.max(room, 0))

local admitted = 0
local waits = {}
for lane = 1, 2 do
  local key = KEYS[lane + 1]
  while admitted < want do
    local batch = redis.call("ZRANGE", key, cursors[lane], cursors[lane] + (want - admitted) - 1)
    if #batch == 0 then break end
    for _, m in ipairs(batch) do
      cursors[lane] = cursors[lane] + 1
      if not redis.call("HGET", KEYS[6], m) then
        redis.call("ZADD", KEYS[4], nowMs + passTtl, m)
        admitted = admitted + 1
        local joinedAt = tonumber(redis.call("HGET", KEYS[8], m))
        if joinedAt then waits[#waits + 1] = math.max(0, nowMs - joinedAt) end
      end
    end
  end
end
local total = tonumber(c[8]) + admitted
redis.call("HSET", KEYS[1], "cursorPre", cursors[1], "cursorLine", cursors[2], "admitted", total, "lastTick", nowMs,
  -- samples for the observed admission rate: the latest tick of each 10-second slot, over two minutes
  "s" .. (math.floor(nowMs / 10000) % 12), ms(nowMs) .. ":" .. total)
local waiting = (redis.call("ZCARD", KEYS[2]) - cursors[1]) + (redis.call("ZCARD", KEYS[3]) - cursors[2])
local out = {1, admitted, #expired, free, held, outstanding + admitted, waiting}
for _, w in ipairs(waits) do out[#out + 1] = w end
return out
