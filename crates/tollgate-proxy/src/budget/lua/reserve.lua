-- Reserves on several budget counters at once, or on none: the same algorithm as
-- `store::decide`, run inside Redis so that proxies sharing the counters never overspend.
--
-- KEYS[i]: counter hashes (field = slot number, value = amount).
-- ARGV[1]: the output cap asked for.
-- ARGV[1 + 7(i-1) + 1 .. +7]: limit, fixed, per_output, flags (1 hard, 2 clamp), slot,
--   first_live, ttl_ms.
-- Returns {granted (1/0), output, refused counter (1-based, 0 when granted), free_at_slot
--   (or -1), then used and oldest slot (or -1) per counter}.
local max_output = tonumber(ARGV[1])
local n = #KEYS
local spec, live, used, oldest = {}, {}, {}, {}
for i = 1, n do
  local base = 1 + 7 * (i - 1)
  local flags = tonumber(ARGV[base + 4])
  spec[i] = {
    limit = tonumber(ARGV[base + 1]),
    fixed = tonumber(ARGV[base + 2]),
    per_output = tonumber(ARGV[base + 3]),
    hard = flags % 2 == 1,
    clamp = math.floor(flags / 2) % 2 == 1,
    slot = ARGV[base + 5],
    first_live = tonumber(ARGV[base + 6]),
    ttl = ARGV[base + 7],
  }
  local fields = redis.call('HGETALL', KEYS[i])
  local slots, sum = {}, 0
  for j = 1, #fields, 2 do
    local slot = tonumber(fields[j])
    if slot < spec[i].first_live then
      redis.call('HDEL', KEYS[i], fields[j])
    else
      local amount = tonumber(fields[j + 1])
      slots[#slots + 1] = {slot, amount}
      sum = sum + amount
    end
  end
  table.sort(slots, function(a, b) return a[1] < b[1] end)
  live[i], used[i] = slots, sum
  oldest[i] = slots[1] and slots[1][1] or -1
end

local function need(i, output)
  return spec[i].fixed + spec[i].per_output * output
end

local function report(granted, output, refused, free_at)
  local out = {granted, output, refused, free_at}
  for i = 1, n do
    out[#out + 1] = used[i]
    out[#out + 1] = oldest[i]
  end
  return out
end

local function refuse(i, output)
  local wanted = need(i, output)
  local free_at = -1
  if wanted <= spec[i].limit then
    local excess = used[i] + wanted - spec[i].limit
    local freed = 0
    for _, entry in ipairs(live[i]) do
      freed = freed + entry[2]
      if freed >= excess then
        free_at = entry[1]
        break
      end
    end
  end
  return report(0, output, i, free_at)
end

local output, clamped_by = max_output, 0
for i = 1, n do
  local s = spec[i]
  if s.hard and s.clamp and s.per_output > 0 then
    local room = s.limit - used[i] - s.fixed
    if room < 0 then room = 0 end
    local fits = math.floor(room / s.per_output)
    if fits < output then
      output, clamped_by = fits, i
    end
  end
end
if clamped_by > 0 and output == 0 and max_output > 0 then
  return refuse(clamped_by, 1)
end
for i = 1, n do
  if spec[i].hard and used[i] + need(i, output) > spec[i].limit then
    return refuse(i, output)
  end
end
for i = 1, n do
  local amount = need(i, output)
  if amount > 0 then
    redis.call('HINCRBY', KEYS[i], spec[i].slot, amount)
    if oldest[i] == -1 then oldest[i] = tonumber(spec[i].slot) end
  end
  redis.call('PEXPIRE', KEYS[i], spec[i].ttl)
  used[i] = used[i] + amount
end
return report(1, output, 0, -1)
