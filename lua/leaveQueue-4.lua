--[[
  leaveQueue: give up a place (or an unused admission pass). Leaving is final for this event.

  Invariants: lanes are never trimmed (they are the record of the order): a leaver is marked in done and
              the admission cursor skips them; a pass given back frees its slot for the next person.

  Input:  KEYS[1] pre     ZSET  arrivals before the sale opened
          KEYS[2] line    ZSET  arrivals after
          KEYS[3] passes  ZSET  member -> pass expiresAtMs
          KEYS[4] done    HASH  member -> "expired" | "left"
          ARGV[1] member

  Output: {1} LEFT | {-36} NOT_IN_QUEUE (never joined, or already finished)

  Idempotent: leaving twice answers NOT_IN_QUEUE the second time and writes nothing.
]]
local member = ARGV[1]
if not string.match(member or "", "^%x+$") then error("ERR bad argument member") end
if redis.call("HGET", KEYS[4], member) then return {-36} end
local inLane = redis.call("ZSCORE", KEYS[1], member) or redis.call("ZSCORE", KEYS[2], member)
local hadPass = redis.call("ZREM", KEYS[3], member) == 1
if not inLane and not hadPass then return {-36} end
redis.call("HSET", KEYS[4], member, "left")
return {1}
