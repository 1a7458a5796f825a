--[[
  admitNext: one tick of the admission worker. Takes back unused passes (past their expiry, or not used within their
  grace period), then admits people from the head of the order (the drawn "pre" lane, then the "line" lane) at most
  maxAdmit at a time, and never more than the stock can serve. A pass is for up to tpp tickets; when fewer are left
  it is sized to what is left ("up to k tickets", k < tpp, kept in meta as pass:<member> and checked by the hold
  scripts), and when the free stock is only scattered single seats (ARGV[4]) each pass is for one seat.

  Invariants: reserved tickets (each unused pass's size) <= free + floor(held x heldShare / 1000), after every
              admission; with an activeCap, reserved + held <= activeCap after every admission (held tickets count only in the share observed to come back); admission follows the lane order
              exactly (leavers skipped); nobody is admitted before the sale opens; a pass without a hold at its
              grace deadline (KEYS[9]) gives its slot back (a pass with a hold gets a new deadline graceMs later).

  Input:  KEYS[1] cfg     HASH  settings, cursors, admitted counter; written here: res, share, unused, sized, singles, lastTick, s0..s11
          KEYS[2] pre     ZSET  drawn arrivals before the sale opened
          KEYS[3] line    ZSET  arrivals after, in order
          KEYS[4] passes  ZSET  member -> pass expiresAtMs
          KEYS[5] used    HASH  pass member -> bookingId of its live hold or sale
          KEYS[6] done    HASH  member -> "expired" | "left"
          KEYS[7] inv     HASH  free:/held:<tier> counters (tiers with an open waitlist left out: includes/stockTotals)
          KEYS[8] joined  HASH  member -> joinedAtMs (read only: the admitted people's waits are returned)
          KEYS[9] grace   ZSET  member -> deadline for the pass's first use (unseen grace; queueStatus shortens it
                                to seenAt + graceMs when the buyer is told)
          KEYS[10] seen   HASH  member -> when the buyer was first told of the pass
          KEYS[11] meta   HASH  the event's sale settings; pass:<member> -> k for a pass sized below tpp; wl:<tierId> (read)
          ARGV[1] nowMs   ARGV[2] maxAdmit (0..10000, from the rate ceiling and the time since the last tick)
          ARGV[3] heldShare (0..1000, per mille of held tickets counted as coming back)
          ARGV[4] singles "1" | "0" (the free stock is only scattered single seats: passes for one seat each)
          ARGV[5] activeCap (0 = none): at most this many tickets in play, reserved by unused passes plus held (the
                  pace of admission, engine/waiting-room/pace.ts)

  Output: {1, admitted, expired, free, held, outstanding, waiting, lapsed, reserved, wait1Ms, wait2Ms, ...} TICKED,
          expired counts every pass taken back (lapsed: those of them not used within their grace), reserved = the
          tickets the unused passes may take, one waitMs per person admitted (nowMs - joinedAtMs; places taken before
          joinedAt was recorded are left out)
          | {0} IDLE (disabled, closed or not open)

  Idempotent: no; each call moves the cursor. Calls are serialized by Redis, so two workers never admit the
  same person twice.
]]
--- @include "includes/validate"
--- @include "includes/stockTotals"

local nowMs = nowArg(ARGV[1], "nowMs")
local maxAdmit = needInt(ARGV[2], "maxAdmit", 0, 10000)
local share = needInt(ARGV[3], "heldShare", 0, 1000)
local singles = ARGV[4]
if singles ~= "1" and singles ~= "0" then error("ERR bad argument singles") end
local activeCap = needInt(ARGV[5], "activeCap", 0, 1e9)
local c = redis.call("HMGET", KEYS[1], "enabled", "closed", "salesAt", "passTtlMs", "tpp", "cursorPre", "cursorLine", "admitted",
  "unseenMs", "sized", "graceMs")
if c[1] ~= "1" or c[2] == "1" or nowMs < tonumber(c[3]) then return {0} end
local passTtl, tpp = tonumber(c[4]), tonumber(c[5])
local unseenMs = tonumber(c[9] or "") or passTtl
local graceMs = tonumber(c[11] or "") or passTtl
local cursors = {tonumber(c[6]), tonumber(c[7])}

local function takeBack(m)
  redis.call("ZREM", KEYS[4], m)
  redis.call("HDEL", KEYS[5], m)
  redis.call("HSET", KEYS[6], m, "expired")
  redis.call("ZREM", KEYS[9], m)
  redis.call("HDEL", KEYS[10], m)
  redis.call("HDEL", KEYS[11], "pass:" .. m)
end

-- passes that ran out give their slot back
local expired = redis.call("ZRANGEBYSCORE", KEYS[4], "-inf", nowMs, "LIMIT", 0, 1000)
for _, m in ipairs(expired) do takeBack(m) end
-- passes not used within their grace period give their slot back too; a pass with a hold is looked at again a grace
-- period later (its hold may be cancelled or expire, and then the pass gives its slot back within one grace period)
local lapsed = 0
for _, m in ipairs(redis.call("ZRANGEBYSCORE", KEYS[9], "-inf", nowMs, "LIMIT", 0, 1000)) do
  if not redis.call("ZSCORE", KEYS[4], m) then
    redis.call("ZREM", KEYS[9], m)
  elseif redis.call("HEXISTS", KEYS[5], m) == 1 then
    redis.call("ZADD", KEYS[9], nowMs + graceMs, m)
  else
    takeBack(m)
    lapsed = lapsed + 1
  end
end

local free, held = stockTotals(KEYS[7], KEYS[11])
local outstanding = redis.call("ZCARD", KEYS[4]) - redis.call("HLEN", KEYS[5])
-- tickets the unused passes may still take: tpp each, less what sized passes lack
local reserved = outstanding * tpp
local sized = {}
for _, m in ipairs(split(c[10] or "", ",")) do
  if m ~= "" and redis.call("ZSCORE", KEYS[4], m) then
    sized[#sized + 1] = m
    if redis.call("HEXISTS", KEYS[5], m) == 0 then
      reserved = reserved - (tpp - tonumber(redis.call("HGET", KEYS[11], "pass:" .. m) or tpp))
    end
  end
end
local room = free + math.floor(held * share / 1000) - reserved
-- the pace: no more tickets in play than the backend sells in time (a pass reserves its size, a hold its count); it
-- stops admission, but never sizes a pass down (sized passes are for the last tickets of the stock)
local paceRoom = activeCap > 0 and (activeCap - reserved - held) or math.huge

local admitted = 0
local waits = {}
-- the size of the next pass (nil: nobody more now, for want of stock or of pace)
local function nextSize()
  if admitted >= maxAdmit or room < 1 then return nil end
  local size = math.min(tpp, room)
  if singles == "1" then size = 1 end
  if paceRoom < size then return nil end
  return size
end
for lane = 1, 2 do
  local key = KEYS[lane + 1]
  while nextSize() do
    local batch = redis.call("ZRANGE", key, cursors[lane], cursors[lane] + (maxAdmit - admitted) - 1)
    if #batch == 0 then break end
    for _, m in ipairs(batch) do
      local size = nextSize()
      if not size then break end
      cursors[lane] = cursors[lane] + 1
      if not redis.call("HGET", KEYS[6], m) then
        redis.call("ZADD", KEYS[4], nowMs + passTtl, m)
        redis.call("ZADD", KEYS[9], nowMs + math.min(unseenMs, passTtl), m)
        if size < tpp then
          redis.call("HSET", KEYS[11], "pass:" .. m, size)
          sized[#sized + 1] = m
        end
        room = room - size
        paceRoom = paceRoom - size
        reserved = reserved + size
        admitted = admitted + 1
        local joinedAt = tonumber(redis.call("HGET", KEYS[8], m))
        if joinedAt then waits[#waits + 1] = math.max(0, nowMs - joinedAt) end
      end
    end
  end
end
local total = tonumber(c[8]) + admitted
redis.call("HSET", KEYS[1], "cursorPre", cursors[1], "cursorLine", cursors[2], "admitted", total, "lastTick", nowMs,
  "res", reserved, "share", share, "unused", outstanding + admitted, "sized", table.concat(sized, ","), "singles", singles,
  -- samples for the observed admission rate: the latest tick of each 10-second slot, over two minutes
  "s" .. (math.floor(nowMs / 10000) % 12), ms(nowMs) .. ":" .. total)
local waiting = (redis.call("ZCARD", KEYS[2]) - cursors[1]) + (redis.call("ZCARD", KEYS[3]) - cursors[2])
local out = {1, admitted, #expired + lapsed, free, held, outstanding + admitted, waiting, lapsed, reserved}
for _, w in ipairs(waits) do out[#out + 1] = w end
return out
