--[[
  restoreHold: put one booking's hold back after a Redis rebuild (its tickets are already counted in the rebuilt
  inventory); a live hold gets its expiry entry back so the sweeper can release it.

  Invariants: never overwrites an existing hold; the hold's state is "held" (or "paying") with an expiry entry, or
              "sold" without one; the attempt counter "a" comes back as the highest attempt Postgres knows of (payHold
              numbers the next attempt a + 1, so it never collides with an existing payments row).

  Input:  KEYS[1] hold     HASH  of the booking
          KEYS[2] expiry   ZSET  bookingId scored by expiresAtMs
          ARGV[1] bookingId   ARGV[2] userId   ARGV[3] tierId   ARGV[4] count   ARGV[5] seats "a,b" ("" = GA)
          ARGV[6] expiresAtMs   ARGV[7] createdAtMs   ARGV[8] state "held" | "paying" | "sold"
          ARGV[9] attempts (payment attempts started so far: max over the payments rows and bookings.payment_attempts)

  Output: {1} RESTORED | {0} ALREADY_THERE

  Idempotent: restoring twice answers ALREADY_THERE and writes nothing.
]]
--- @include "includes/validate"

local bookingId = needId(ARGV[1], "bookingId")
local userId = needId(ARGV[2], "userId")
local tierId = needId(ARGV[3], "tierId")
local count = needInt(ARGV[4], "count", 1, 1000)
local seats = ARGV[5] or ""
local expiresAt = needInt(ARGV[6], "expiresAtMs", 0, 1e14)
local createdAt = needInt(ARGV[7], "createdAtMs", 0, 1e14)
local state = ARGV[8]
if state ~= "held" and state ~= "paying" and state ~= "sold" then error("ERR bad argument state") end
local attempts = needInt(ARGV[9], "attempts", 0, 1000)
if redis.call("EXISTS", KEYS[1]) == 1 then return {0} end
redis.call("HSET", KEYS[1], "u", userId, "t", tierId, "n", count, "s", seats, "x", ms(expiresAt), "c", ms(createdAt), "st", state, "p", "", "a", attempts)
if state ~= "sold" then redis.call("ZADD", KEYS[2], ms(expiresAt), bookingId) end
return {1}
