--[[
  holdSeats: hold specific assigned seats (all of one tier) for one buyer until nowMs + ttlMs.

  Invariants: a seat is free ("."), held ("h") by exactly one hold, or sold ("s");
              for every tier, cap == free + held + sold, and free == the "." seats of its sections;
              a buyer's held + bought tickets never exceed the event's maxPerUser;
              a hold and its BookingCreated outbox entry are written together or not at all.

  Input:  KEYS[1] meta     HASH  armed, opensAt, maxPerUser, pass:<member> (the size of a sized admission pass)
          KEYS[2] inv      HASH  kind:<tier>, cap:/free:/held:/sold:<tier> counts
          KEYS[3] sec      HASH  section -> "tierId,rows,seatsPerRow"
          KEYS[4] smap     HASH  section -> one character per seat, row-major
          KEYS[5] hold     HASH  of this booking (must not exist yet)
          KEYS[6] expiry   ZSET  bookingId scored by expiresAtMs
          KEYS[7] buyers   HASH  userId -> tickets held + bought
          KEYS[8] idem     STRING first reply for this buyer's Idempotency-Key (format: includes/holdCommon)
          KEYS[9] outbox   STREAM domain events of this event
          KEYS[10] passes  ZSET  waiting-room admission passes: member -> expiresAtMs
          KEYS[11] used    HASH  pass member -> bookingId of its live hold or sale
          KEYS[12] rlUser  STRING this buyer's hold requests in the window   KEYS[13] rlIp  STRING the client address's
          ARGV[1] eventId   ARGV[2] bookingId   ARGV[3] userId   ARGV[4] tierId ("" = the seats' tier)
          ARGV[5] nowMs     ARGV[6] ttlMs       ARGV[7] fingerprint ("" = none)   ARGV[8] idemTtlMs
          ARGV[9] admission pass member ("" = none; required when meta.admission is "1")
          ARGV[10] the Idempotency-Key itself ("" = none), kept in the BookingCreated entry so a rebuild can replay it
          ARGV[11] rate limits "<perUser>,<perIp>,<windowMs>" (0 = off; "" = none), counted first (includes/rateLimit)
          ARGV[12..] seatIds "<section>-<row>-<number>", 1 to 100 distinct seats, each in its one canonical spelling
                    (row and number in decimal without sign, space or leading zero: "A-1-1", never "A-01-1")

  Output: {1, bookingId, tierId, count, "seat,seat", expiresAtMs, createdAtMs}   HELD
          {2, <the same fields as the first reply>}                                REPLAYED
          {-1} NOT_ARMED | {-2, opensAtMs} SALES_NOT_OPEN | {-6, seatId} UNKNOWN_SEAT (no such section,
            a row or number outside the section's bounds, or not a canonical seat id)
          {-10, seatId} SEAT_TIER_MISMATCH (seat not in the requested tier, or seats of several tiers)
          {-5, seatId} SEAT_TAKEN | {-7, ticketsStillAllowed} TICKET_LIMIT | {-8} IDEMPOTENCY_MISMATCH
          {-33} NOT_ADMITTED (waiting-room event, no live admission pass) | {-34} PASS_IN_USE (the pass has a live hold or a sale)
          {-37, passTickets} PASS_LIMIT (more tickets than the sized admission pass allows)
          {-40, retryAfterMs} RATE_LIMITED (over a limit of ARGV[11]; only the counters changed)

  Idempotent: a call with the same KEYS[8] and fingerprint returns the first reply and writes nothing;
              rejections store nothing.
]]
--- @include "includes/validate"
--- @include "includes/holdCommon"
--- @include "includes/rateLimit"
--- @include "includes/seatMap"

local seatIds = {}
for i = 12, #ARGV do seatIds[#seatIds + 1] = ARGV[i] end
if #seatIds < 1 or #seatIds > 100 then error("ERR bad argument seatIds") end
local a = {
  eventId = needId(ARGV[1], "eventId"), bookingId = needId(ARGV[2], "bookingId"),
  userId = needId(ARGV[3], "userId"), tierId = optId(ARGV[4], "tierId"),
  nowMs = nowArg(ARGV[5], "nowMs"), ttlMs = needInt(ARGV[6], "ttlMs", 1, 1e10),
  fingerprint = ARGV[7] or "", idemTtlMs = needInt(ARGV[8], "idemTtlMs", 1, 1e10),
  count = #seatIds, seats = table.concat(seatIds, ","), pass = ARGV[9] or "",
  idemKey = ARGV[10] or "",
}
local k = {meta = KEYS[1], inv = KEYS[2], sec = KEYS[3], smap = KEYS[4], hold = KEYS[5], expiry = KEYS[6],
           buyers = KEYS[7], idem = KEYS[8], outbox = KEYS[9], passes = KEYS[10], used = KEYS[11]}
local seen = {}
for _, seatId in ipairs(seatIds) do
  if seen[seatId] then error("ERR bad argument seatIds: duplicate") end
  seen[seatId] = true
end

local limited = rateLimited(KEYS[12], KEYS[13], ARGV[11]) if limited then return limited end
local err, maxPerUser = checkHoldStart(k, a)
if err then return err end

-- check every seat before writing anything
local maps, per, picked, chosen = {}, {}, {}, {}
for _, seatId in ipairs(seatIds) do
  local section, row, num = parseSeat(seatId)
  if not section then return {-6, seatId} end
  if not maps[section] then
    local tier, rows, seatsPerRow = sectionInfo(k.sec, section)
    if not tier then return {-6, seatId} end
    if a.tierId == "" then a.tierId = tier end
    if tier ~= a.tierId then return {-10, seatId} end
    maps[section] = {map = redis.call("HGET", k.smap, section), rows = rows}
    per[section] = seatsPerRow
    picked[section] = {}
  end
  if row < 1 or row > maps[section].rows or num < 1 or num > per[section] then return {-6, seatId} end
  local index = (row - 1) * per[section] + num
  if index > #maps[section].map then return {-6, seatId} end
  if string.sub(maps[section].map, index, index) ~= "." then return {-5, seatId} end
  if chosen[section .. "-" .. index] then error("ERR bad argument seatIds: duplicate") end
  chosen[section .. "-" .. index] = true
  table.insert(picked[section], index)
end
err = checkCap(k.buyers, a.userId, a.count, maxPerUser)
if err then return err end
if redis.call("EXISTS", k.hold) == 1 then error("ERR booking id already used") end

for section, indexes in pairs(picked) do
  redis.call("HSET", k.smap, section, rewriteSeats(maps[section].map, indexes, "h"))
end
redis.call("HINCRBY", k.inv, "free:" .. a.tierId, -a.count)
redis.call("HINCRBY", k.inv, "held:" .. a.tierId, a.count)
return commitHold(k, a)
