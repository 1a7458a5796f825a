--[[
  takeLease: a short exclusive lease, so one process at a time drains an event's outbox (in order).

  Invariants: at most one owner holds the lease; only the owner renews or drops it.

  Input:  KEYS[1] lease   STRING owner id, PX ttlMs
          ARGV[1] owner   ARGV[2] ttlMs   ARGV[3] mode "take" | "drop"

  Output: {1} HELD (taken, renewed or dropped by its owner) | {0} BUSY (someone else holds it)

  Idempotent: taking a lease you hold renews it; dropping one you do not hold changes nothing.
]]
--- @include "includes/validate"

local owner = needId(ARGV[1], "owner")
local ttlMs = needInt(ARGV[2], "ttlMs", 1, 3600000)
local mode = ARGV[3]
if mode ~= "take" and mode ~= "drop" then error("ERR bad argument mode") end
local current = redis.call("GET", KEYS[1])
if current and current ~= owner then return {0} end
if mode == "drop" then
  if current then redis.call("DEL", KEYS[1]) end
  return {1}
end
redis.call("SET", KEYS[1], owner, "PX", ttlMs)
return {1}
