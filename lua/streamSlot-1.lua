--[[
  streamSlot: one open status stream (Server-Sent Events) of one user or one client IP, counted in Redis so every
  API process shares the cap. Each slot is a lease: the stream renews it while it runs and drops it when it ends; a
  process that dies without dropping it leaves a lease that lapses after ttlMs, so no slot leaks for good.

  Invariants: at most max unexpired slots per key; a refused call changes nothing but the removal of lapsed slots.

  Input:  KEYS[1] slots   ZSET  streamId -> lease expiresAtMs (PEXPIREd with the longest lease)
          ARGV[1] streamId   ARGV[2] nowMs   ARGV[3] ttlMs   ARGV[4] max (1..100000)   ARGV[5] mode "take" | "drop"

  Output: {1, open} HELD (taken, renewed or dropped; open = slots held after the call)
          {0, open} BUSY (max slots held by other streams)

  Idempotent: taking a slot you hold renews it; dropping a slot you do not hold changes nothing.
]]
--- @include "includes/validate"

local streamId = needId(ARGV[1], "streamId")
local nowMs = nowArg(ARGV[2], "nowMs")
local ttlMs = needInt(ARGV[3], "ttlMs", 1, 3600000)
local max = needInt(ARGV[4], "max", 1, 100000)
local mode = ARGV[5]
if mode ~= "take" and mode ~= "drop" then error("ERR bad argument mode") end

redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", ms(nowMs))
if mode == "drop" then
  redis.call("ZREM", KEYS[1], streamId)
  return {1, redis.call("ZCARD", KEYS[1])}
end
local open = redis.call("ZCARD", KEYS[1])
if not redis.call("ZSCORE", KEYS[1], streamId) and open >= max then return {0, open} end
redis.call("ZADD", KEYS[1], ms(nowMs + ttlMs), streamId)
redis.call("PEXPIRE", KEYS[1], ttlMs)
return {1, redis.call("ZCARD", KEYS[1])}
