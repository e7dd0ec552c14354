-- One page of the session index, newest activity first, ties by id descending (the sorted
-- set's own order), strictly after the cursor (score, id) when one is given. Exact whatever
-- the ties: the cursor's position is counted, not searched from its score.
-- KEYS: session index
-- ARGV: limit, then optionally cursor score and cursor id
-- Returns member, score, member, score, ...
-- Byte order, as the sorted set orders ties ('<' on strings follows the server's locale).
local function at_or_after(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a >= #b
end

local limit = tonumber(ARGV[1])
local start = 0
if ARGV[2] then
  local score, id = ARGV[2], ARGV[3]
  start = redis.call('ZCOUNT', KEYS[1], '(' .. score, '+inf')
  local tied = redis.call('ZRANGEBYSCORE', KEYS[1], score, score)
  for i = 1, #tied do
    if at_or_after(tied[i], id) then start = start + 1 end
  end
end
return redis.call('ZREVRANGE', KEYS[1], start, start + limit - 1, 'WITHSCORES')
