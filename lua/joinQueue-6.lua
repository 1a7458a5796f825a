--[[
  joinQueue: take one place in an event's waiting room (one place per person: joining again returns the same one).

  Invariants: a member is in at most one lane; arrivals before the sale opens go into the "pre" lane scored by
              sha1(seed .. ":" .. member), a draw no one can predict before the seed is revealed and anyone can
              recompute after; later arrivals go into the "line" lane in arrival order. Lanes are never trimmed,
              so they stay the verifiable record of the order; admission moves a cursor along them.

  Input:  KEYS[1] cfg     HASH  waiting-room settings, seed, seq, cursors
          KEYS[2] pre     ZSET  member -> draw score (arrivals before the sale opened)
          KEYS[3] line    ZSET  member -> arrival sequence (arrivals after)
          KEYS[4] passes  ZSET  member -> pass expiresAtMs
          KEYS[5] done    HASH  member -> "expired" | "left"
          KEYS[6] joined  HASH  member -> joinedAtMs (when the place was taken; admitNext measures the wait from it)
          ARGV[1] member (the person's pseudonymous place id, 16 hex)   ARGV[2] nowMs

  Output: {1, lane} JOINED | {2, lane} ALREADY_IN (the same place) | {3, state} FINISHED (expired or left)
          {-30} NOT_ENABLED | {-31} CLOSED | {-32, opensAtMs} NOT_OPEN_YET

  Idempotent: joining again answers ALREADY_IN (or FINISHED) and writes nothing.
]]
--- @include "includes/validate"

local member = ARGV[1]
if not string.match(member or "", "^%x+$") or #member > 32 then error("ERR bad argument member") end
local nowMs = nowArg(ARGV[2], "nowMs")
local c = redis.call("HMGET", KEYS[1], "enabled", "closed", "opensAt", "salesAt", "seed")
if c[1] ~= "1" then return {-30} end
if c[2] == "1" then return {-31} end
if nowMs < tonumber(c[3]) then return {-32, c[3]} end

local finished = redis.call("HGET", KEYS[5], member)
if finished then return {3, finished} end
if redis.call("ZSCORE", KEYS[2], member) then return {2, "pre"} end
if redis.call("ZSCORE", KEYS[3], member) then return {2, "line"} end
if redis.call("ZSCORE", KEYS[4], member) then return {2, "passes"} end

if nowMs < tonumber(c[4]) then
  -- 13 hex digits = 52 bits: exact in a double, so the ZSET order is the draw order (ties by member)
  local score = tonumber(string.sub(redis.sha1hex(c[5] .. ":" .. member), 1, 13), 16)
  redis.call("ZADD", KEYS[2], score, member)
  redis.call("HSET", KEYS[6], member, ms(nowMs))
  return {1, "pre"}
end
redis.call("ZADD", KEYS[3], redis.call("HINCRBY", KEYS[1], "seq", 1), member)
redis.call("HSET", KEYS[6], member, ms(nowMs))
return {1, "line"}
