--[[
  configureQueue: set an event's waiting-room settings and whether bookings need an admission pass.

  Invariants: the fairness seed is set once, when the waiting room is first configured, and never changes
              (its SHA-256 is published before the draw); meta.admission == cfg.enabled.

  Input:  KEYS[1] cfg    HASH  enabled, opensAt, salesAt, rate, passTtlMs, tpp, graceMs, unseenMs, seed, seedHash, seq, cursors, admitted
          KEYS[2] meta   HASH  the event's sale settings (admission flag)
          ARGV[1] enabled "1" | "0"   ARGV[2] opensAtMs   ARGV[3] salesAtMs   ARGV[4] admissions per second
          ARGV[5] passTtlMs   ARGV[6] tickets per pass   ARGV[7] seed (hex, used only if none is set)
          ARGV[8] SHA-256 of that seed (hex)
          ARGV[9] graceMs: time to make a hold with a pass once its buyer has been told of it
          ARGV[10] unseenGraceMs: time to make a hold with a pass its buyer has not looked at (both capped by passTtlMs)

  Output: {1, seedHash} CONFIGURED (with the seed hash in force) | {-1} NOT_ARMED

  Idempotent: the same settings written twice leave the same state; the seed of the first call stays.
]]
--- @include "includes/validate"

local enabled = ARGV[1]
if enabled ~= "1" and enabled ~= "0" then error("ERR bad argument enabled") end
local opensAt = needInt(ARGV[2], "opensAtMs", 0, 1e14)
local salesAt = needInt(ARGV[3], "salesAtMs", 0, 1e14)
if salesAt < opensAt then error("ERR bad argument: sales open before the waiting room") end
local rate = needInt(ARGV[4], "rate", 1, 1000000)
local passTtl = needInt(ARGV[5], "passTtlMs", 1000, 86400000)
local tpp = needInt(ARGV[6], "ticketsPerPass", 1, 1000)
local graceMs = needInt(ARGV[9], "graceMs", 1000, 86400000)
local unseenMs = needInt(ARGV[10], "unseenGraceMs", 1000, 86400000)
if not string.match(ARGV[7] or "", "^%x+$") or not string.match(ARGV[8] or "", "^%x+$") then error("ERR bad argument seed") end

if redis.call("HGET", KEYS[2], "armed") ~= "1" then return {-1} end
if not redis.call("HGET", KEYS[1], "seed") then
  redis.call("HSET", KEYS[1], "seed", ARGV[7], "seedHash", ARGV[8], "seq", 0, "cursorPre", 0, "cursorLine", 0, "admitted", 0)
end
redis.call("HSET", KEYS[1], "enabled", enabled, "opensAt", opensAt, "salesAt", salesAt, "rate", rate,
  "passTtlMs", passTtl, "tpp", tpp, "graceMs", graceMs, "unseenMs", unseenMs)
redis.call("HSET", KEYS[2], "admission", enabled, "opensAt", salesAt)
return {1, redis.call("HGET", KEYS[1], "seedHash")}
