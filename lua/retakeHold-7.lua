--[[
  retakeHold: a payment succeeded after its hold's deadline. If the hold is still there (not swept yet) it is sold as
  is; if it was released, the very same tickets (the same seats, or the same number of general-admission tickets)
  are taken again and sold, but only if every one of them is still free. Otherwise nothing changes and the caller
  gives the money back.

  Invariants: cap == free + held + sold; a seat is sold to one booking only; the sale and its BookingConfirmed
              outbox entry (retaken = 1) are atomic.

  Input:  KEYS[1] inv      HASH  free:/held:/sold:<tier>
          KEYS[2] sec      HASH  section -> "tierId,rows,seatsPerRow"
          KEYS[3] smap     HASH  section -> seat characters
          KEYS[4] hold     HASH  of the booking (may be gone)
          KEYS[5] expiry   ZSET  bookingId scored by expiresAtMs
          KEYS[6] buyers   HASH  userId -> tickets held + bought
          KEYS[7] outbox   STREAM domain events of this event
          ARGV[1] eventId   ARGV[2] bookingId   ARGV[3] userId   ARGV[4] tierId   ARGV[5] count
          ARGV[6] seats "a,b" ("" for general admission)   ARGV[7] nowMs   ARGV[8] paymentRef

  Output: {1, how} RETAKEN (how: "kept" the unswept hold | "retaken" released tickets) | {3} ALREADY_CONFIRMED
          {-24, seatId or ""} GONE (a seat, or the general-admission stock, is no longer free)

  Idempotent: a repeat answers ALREADY_CONFIRMED and writes nothing.
]]
--- @include "includes/validate"
--- @include "includes/seatMap"

local eventId = needId(ARGV[1], "eventId")
local bookingId = needId(ARGV[2], "bookingId")
local userId = needId(ARGV[3], "userId")
local tierId = needId(ARGV[4], "tierId")
local count = needInt(ARGV[5], "count", 1, 1000)
local seatsCsv = ARGV[6] or ""
local nowMs = nowArg(ARGV[7], "nowMs")
local paymentRef = ARGV[8] or ""
local k = {inv = KEYS[1], sec = KEYS[2], smap = KEYS[3], hold = KEYS[4], expiry = KEYS[5], buyers = KEYS[6], outbox = KEYS[7]}

local function confirmed(how)
  redis.call("ZREM", k.expiry, bookingId)
  redis.call("HSET", k.hold, "st", "sold")
  redis.call("XADD", k.outbox, "*", "type", "BookingConfirmed", "eventId", eventId, "bookingId", bookingId,
    "userId", userId, "tierId", tierId, "count", count, "seats", seatsCsv, "paymentRef", paymentRef, "retaken", "1",
    "atMs", ms(nowMs))
  return {1, how}
end

local st = redis.call("HGET", k.hold, "st")
if st == "sold" then return {3} end
if st == "held" or st == "paying" then
  moveHoldSeats(k, tierId, count, seatsCsv, "held", "sold", "s")
  return confirmed("kept")
end

-- released: every ticket must still be free
if seatsCsv == "" then
  if tonumber(redis.call("HGET", k.inv, "free:" .. tierId) or "0") < count then return {-24, ""} end
else
  for _, seatId in ipairs(split(seatsCsv, ",")) do
    local section, row, num = storedSeat(seatId)
    local _, _, per = sectionInfo(k.sec, section)
    local index = (row - 1) * per + num
    if string.sub(redis.call("HGET", k.smap, section), index, index) ~= "." then return {-24, seatId} end
  end
end
moveHoldSeats(k, tierId, count, seatsCsv, "free", "sold", "s")
redis.call("HSET", k.hold, "u", userId, "t", tierId, "n", count, "s", seatsCsv, "x", ms(nowMs), "c", ms(nowMs), "p", "")
redis.call("HINCRBY", k.buyers, userId, count)
return confirmed("retaken")
