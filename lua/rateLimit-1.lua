--[[
  rateLimit: counts one request against one fixed-window limit (a buyer's or a client address's, for one route group).

  Invariants: the counter holds the requests of the current window, refused ones included; the first request of a
              window sets its expiry (PX windowMs), so a window ends windowMs after its first request.

  Input:  KEYS[1] counter  STRING request count, PX windowMs (engine/keys.ts globalKeys.rateCounter)
          ARGV[1] points (requests allowed per window, >= 1)   ARGV[2] windowMs

  Output: {1} ALLOWED | {-40, retryAfterMs} RATE_LIMITED (the ms until the window ends)

  Idempotent: no: every call is one request and counts (a retry of a refused request counts too, by design).
]]
--- @include "includes/validate"
--- @include "includes/rateLimit"

local wait = countRequest(KEYS[1], needInt(ARGV[1], "points", 1, 1e9), needInt(ARGV[2], "windowMs", 1, 1e10))
if wait then return {-40, tostring(wait)} end
return {1}
