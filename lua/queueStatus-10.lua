--[[
  queueStatus: where one person stands, read in one atomic step. Its one write: the first time an admitted person is
  told of an unused pass, the pass's grace deadline becomes seenAt + graceMs (so the short grace counts from when the
  buyer knows, and a pass nobody looks at lapses at the longer unseen deadline admitNext set).

  Invariants: people ahead = waiting places before this one in the admission order (the drawn lane first), counting
              leavers not yet passed by the cursor; a pass is live iff nowMs < its expiry; a pass's grace deadline
              is moved at most once (seen is written once per pass).

  Input:  KEYS[1] cfg     HASH  settings, cursors, admission state of the last tick (res, share, unused)
          KEYS[2] pre     ZSET  drawn arrivals before the sale opened
          KEYS[3] line    ZSET  arrivals after
          KEYS[4] passes  ZSET  member -> pass expiresAtMs
          KEYS[5] used    HASH  pass member -> bookingId
          KEYS[6] done    HASH  member -> "expired" | "left"
          KEYS[7] inv     HASH  free:/held:<tier> counters (tiers with an open waitlist left out: includes/stockTotals)
          KEYS[8] grace   ZSET  member -> deadline for the pass's first use
          KEYS[9] seen    HASH  member -> when the buyer was first told of the pass
          KEYS[10] meta   HASH  the event's sale settings; pass:<member> -> k for a sized pass; wl:<tierId> (read)
          ARGV[1] member   ARGV[2] nowMs

  Output: {1, status, ahead, passExpiresAtMs, salesAtMs, free, held, admittedTotal, lastTickMs, bookingId, lane,
             rate, passTickets, useByMs, reserved, heldShare, unusedPasses, tpp, s0, ..., s11} FOUND
            (rate = the admission ceiling; passTickets = k of a sized pass, "" for a full one; useByMs = the grace
            deadline of an unused pass, ""; heldShare: as of the last admission tick; unusedPasses: now;
            reserved: the tickets unused passes may take, as of the last tick and at most unusedPasses x tpp;
            s* = rate samples "atMs:admittedTotal" or "")
            status: "waiting" | "admitted" | "expired" | "closed"; ahead = -1 before the draw
          {-36} NOT_IN_QUEUE (never joined, or left)

  Idempotent: a repeated read answers the same (the grace deadline moves only on the first read of a pass).
]]
--- @include "includes/validate"
--- @include "includes/stockTotals"

local member = ARGV[1]
if not string.match(member or "", "^%x+$") then error("ERR bad argument member") end
local nowMs = nowArg(ARGV[2], "nowMs")
local c = redis.call("HMGET", KEYS[1], "enabled", "closed", "salesAt", "cursorPre", "cursorLine", "admitted", "lastTick", "rate",
  "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "graceMs", "res", "share", "unused", "tpp")
local free, held = stockTotals(KEYS[7], KEYS[10])
-- passes used since the last tick no longer reserve anything (passes are issued and taken back only by ticks)
local unused = redis.call("ZCARD", KEYS[4]) - redis.call("HLEN", KEYS[5])
local reserved = math.min(tonumber(c[22] or "0"), unused * tonumber(c[25] or "1"))
local function reply(status, ahead, passExp, lane, useBy)
  local out = {1, status, ahead, passExp or 0, c[3] or "0", free, held, c[6] or "0", c[7] or "0",
    redis.call("HGET", KEYS[5], member) or "", lane or "", c[8] or "0",
    passExp and (redis.call("HGET", KEYS[10], "pass:" .. member) or "") or "", useBy or "",
    reserved, c[23] or "0", unused, c[25] or "0"}
  for i = 9, 20 do out[#out + 1] = c[i] or "" end
  return out
end

local finished = redis.call("HGET", KEYS[6], member)
if finished == "left" then return {-36} end
local passExp = redis.call("ZSCORE", KEYS[4], member)
if passExp then
  if tonumber(passExp) > nowMs then
    local useBy = redis.call("ZSCORE", KEYS[8], member)
    if useBy and redis.call("HEXISTS", KEYS[5], member) == 0 and redis.call("HSETNX", KEYS[9], member, ms(nowMs)) == 1 then
      useBy = ms(math.min(tonumber(passExp), nowMs + tonumber(c[21] or "20000")))
      redis.call("ZADD", KEYS[8], useBy, member)
    end
    if redis.call("HEXISTS", KEYS[5], member) == 1 then useBy = nil end
    return reply("admitted", 0, passExp, nil, useBy)
  end
  return reply("expired", 0, passExp)
end
if finished then return reply(finished, 0) end

local rank = redis.call("ZRANK", KEYS[2], member)
local lane = "pre"
local ahead
if rank then
  if c[3] and nowMs < tonumber(c[3]) then
    if c[1] ~= "1" or c[2] == "1" then return reply("closed", -1, nil, lane) end
    return reply("waiting", -1, nil, lane) -- the draw happens when the sale opens
  end
  ahead = rank - tonumber(c[4] or 0)
else
  rank = redis.call("ZRANK", KEYS[3], member)
  if not rank then return {-36} end
  lane = "line"
  ahead = (redis.call("ZCARD", KEYS[2]) - tonumber(c[4] or 0)) + rank - tonumber(c[5] or 0)
end
if c[1] ~= "1" or c[2] == "1" then return reply("closed", ahead, nil, lane) end
-- passed by the cursor without a pass or a finish mark: cannot happen (only leavers are skipped)
if ahead < 0 then return reply("expired", 0, nil, lane) end
return reply("waiting", ahead, nil, lane)
