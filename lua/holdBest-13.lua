--[[
  holdBest: hold the best N seats of a seated tier or of one section: the first row (nearest the stage)
  with N adjacent free seats, the run closest to the row's centre. With adjacent = "0" it falls back to
  the first N free seats in row order when no adjacent run exists.

  Invariants: as holdSeats: a seat is free, held by exactly one hold, or sold; cap == free + held + sold;
              the buyer cap holds; the hold and its BookingCreated outbox entry are atomic.

  Input:  KEYS[1] meta     HASH  armed, opensAt, maxPerUser, pass:<member> (the size of a sized admission pass)
          KEYS[2] inv      HASH  kind:<tier>, secs:<tier> "A,B", cap:/free:/held:/sold:<tier>
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
          ARGV[1] eventId   ARGV[2] bookingId   ARGV[3] userId   ARGV[4] tierId ("" = the section's tier)
          ARGV[5] count (1..100)   ARGV[6] nowMs   ARGV[7] ttlMs   ARGV[8] fingerprint ("" = none)
          ARGV[9] idemTtlMs        ARGV[10] section ("" = any section of the tier, in their listed order)
          ARGV[11] adjacent "1" | "0"   ARGV[12] admission pass member ("" = none; required when meta.admission is "1")
          ARGV[13] the Idempotency-Key itself ("" = none), kept in the BookingCreated entry so a rebuild can replay it
          ARGV[14] rate limits "<perUser>,<perIp>,<windowMs>" (0 = off; "" = none), counted first (includes/rateLimit)

  Output: {1, bookingId, tierId, count, "seat,seat", expiresAtMs, createdAtMs}   HELD
          {2, <the same fields as the first reply>}                                REPLAYED
          {-1} NOT_ARMED | {-2, opensAtMs} SALES_NOT_OPEN | {-3} UNKNOWN_TIER | {-9} TIER_KIND (tier is GA)
          {-12} UNKNOWN_SECTION | {-10, section} SEAT_TIER_MISMATCH (section not in the requested tier)
          {-4, available} INSUFFICIENT | {-11, available} NO_ADJACENT (enough seats, none N in a row)
          {-7, ticketsStillAllowed} TICKET_LIMIT | {-8} IDEMPOTENCY_MISMATCH
          {-33} NOT_ADMITTED (waiting-room event, no live admission pass) | {-34} PASS_IN_USE (the pass has a live hold or a sale)
          {-37, passTickets} PASS_LIMIT (more tickets than the sized admission pass allows)
          {-40, retryAfterMs} RATE_LIMITED (over a limit of ARGV[14]; only the counters changed)

  Idempotent: a call with the same KEYS[8] and fingerprint returns the first reply and writes nothing;
              rejections store nothing.
]]
--- @include "includes/validate"
--- @include "includes/holdCommon"
--- @include "includes/rateLimit"
--- @include "includes/seatMap"

local a = {
  eventId = needId(ARGV[1], "eventId"), bookingId = needId(ARGV[2], "bookingId"),
  userId = needId(ARGV[3], "userId"), tierId = optId(ARGV[4], "tierId"),
  count = needInt(ARGV[5], "count", 1, 100), nowMs = nowArg(ARGV[6], "nowMs"),
  ttlMs = needInt(ARGV[7], "ttlMs", 1, 1e10), fingerprint = ARGV[8] or "",
  idemTtlMs = needInt(ARGV[9], "idemTtlMs", 1, 1e10), pass = ARGV[12] or "",
  idemKey = ARGV[13] or "",
}
local section = optId(ARGV[10], "section")
local adjacent = ARGV[11]
if adjacent ~= "1" and adjacent ~= "0" then error("ERR bad argument adjacent") end
if section == "" and a.tierId == "" then error("ERR bad argument: tierId or section required") end
local k = {meta = KEYS[1], inv = KEYS[2], sec = KEYS[3], smap = KEYS[4], hold = KEYS[5], expiry = KEYS[6],
           buyers = KEYS[7], idem = KEYS[8], outbox = KEYS[9], passes = KEYS[10], used = KEYS[11]}

local limited = rateLimited(KEYS[12], KEYS[13], ARGV[14]) if limited then return limited end
local err, maxPerUser = checkHoldStart(k, a)
if err then return err end

local sections = {}
if section ~= "" then
  local tier = sectionInfo(k.sec, section)
  if not tier then return {-12} end
  if a.tierId == "" then a.tierId = tier end
  if tier ~= a.tierId then return {-10, section} end
  sections = {section}
end
local kind = redis.call("HGET", k.inv, "kind:" .. a.tierId)
if not kind then return {-3} end
if kind ~= "seated" then return {-9} end
if section == "" then sections = split(redis.call("HGET", k.inv, "secs:" .. a.tierId), ",") end
if section == "" then
  local free = tonumber(redis.call("HGET", k.inv, "free:" .. a.tierId))
  if free < a.count then return {-4, tostring(free)} end
end

-- best adjacent run: rows in order, then the run whose start is nearest the centre
local function bestRun(map, rows, per, n)
  local ideal = (per - n) / 2 + 1
  for r = 1, rows do
    local row = string.sub(map, (r - 1) * per + 1, r * per)
    local best, bestDist, pos = nil, nil, 1
    while true do
      local s, e = string.find(row, "%.+", pos)
      if not s then break end
      if e - s + 1 >= n then
        local start = math.floor(ideal + 0.5)
        if start < s then start = s end
        if start > e - n + 1 then start = e - n + 1 end
        local dist = math.abs(start - ideal)
        if not best or dist < bestDist then best, bestDist = start, dist end
      end
      pos = e + 1
    end
    if best then
      local idx = {}
      for i = 0, n - 1 do idx[#idx + 1] = (r - 1) * per + best + i end
      return idx
    end
  end
  return nil
end

local chosen, scopeFree = nil, 0
local infos = {}
for _, s in ipairs(sections) do
  local _, rows, per = sectionInfo(k.sec, s)
  local map = redis.call("HGET", k.smap, s)
  infos[#infos + 1] = {id = s, rows = rows, per = per, map = map}
  local _, dots = string.gsub(map, "%.", "")
  scopeFree = scopeFree + dots
  if not chosen and dots >= a.count then
    local idx = bestRun(map, rows, per, a.count)
    if idx then chosen = {[s] = idx} end
  end
  if chosen then break end
end
if not chosen then
  if scopeFree < a.count then return {-4, tostring(scopeFree)} end
  if adjacent == "1" then return {-11, tostring(scopeFree)} end
  chosen = {}
  local need = a.count
  for _, info in ipairs(infos) do
    local pos = 1
    while need > 0 do
      local at = string.find(info.map, ".", pos, true)
      if not at then break end
      chosen[info.id] = chosen[info.id] or {}
      table.insert(chosen[info.id], at)
      need = need - 1
      pos = at + 1
    end
    if need == 0 then break end
  end
end
err = checkCap(k.buyers, a.userId, a.count, maxPerUser)
if err then return err end
if redis.call("EXISTS", k.hold) == 1 then error("ERR booking id already used") end

local seatIds = {}
for _, info in ipairs(infos) do
  local idx = chosen[info.id]
  if idx then
    for _, i in ipairs(idx) do
      seatIds[#seatIds + 1] = info.id .. "-" .. (math.floor((i - 1) / info.per) + 1) .. "-" .. ((i - 1) % info.per + 1)
    end
    redis.call("HSET", k.smap, info.id, rewriteSeats(info.map, idx, "h"))
  end
end
a.seats = table.concat(seatIds, ",")
redis.call("HINCRBY", k.inv, "free:" .. a.tierId, -a.count)
redis.call("HINCRBY", k.inv, "held:" .. a.tierId, a.count)
return commitHold(k, a)
