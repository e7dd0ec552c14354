-- The context window, walked newest first within a count and an optional token budget. The
-- newest message is always in it, whatever its size. With keep_summary, the session's summary
-- comes next: in if it fits beside the newest message, left out (the first to yield) if not.
-- Then older messages join while they fit; the first that does not ends the walk, so the
-- messages are always an unbroken run of the newest. Without keep_summary a summary is an
-- entry like any other (the oldest). Costs O(window), not O(session).
-- KEYS: meta, order, msgs
-- ARGV: max_count, token_budget (-1 = none), keep_summary (1/0)
-- Returns: truncated (0/1: something older was left out), tokens used, summary record or '',
-- picked records newest first.
local max_count = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local used = 0
local count = 0
local truncated = 0
-- Whether an entry of `tokens` leaves the window within its count and budget.
local function fits(tokens)
  return count < max_count and (budget < 0 or used + tokens <= budget)
end

local summary_id = false
local summary = false -- its record while its turn has not come
if ARGV[3] == '1' then
  summary_id = redis.call('HGET', KEYS[1], 'summary')
  if summary_id then summary = redis.call('HGET', KEYS[3], summary_id) end
end
local kept_summary = ''
local function take_summary()
  local tokens = tokens_of(summary)
  if count == 0 or fits(tokens) then
    kept_summary = summary
    used = used + tokens
    count = count + 1
  else
    truncated = 1
  end
  summary = false
end

local picked = {}
local chunk = math.min(max_count + 1, 128)
local start = 0
while true do
  local ids = redis.call('ZREVRANGE', KEYS[2], start, start + chunk - 1)
  if #ids == 0 then break end
  local records = redis.call('HMGET', KEYS[3], unpack(ids))
  local full = false
  for i = 1, #ids do
    if ids[i] ~= summary_id then
      local tokens = tokens_of(records[i])
      -- (fits(), inlined: this loop is the script's cost)
      if count > 0 and (count >= max_count or (budget >= 0 and used + tokens > budget)) then
        truncated = 1
        full = true
        break
      end
      used = used + tokens
      count = count + 1
      picked[#picked + 1] = records[i]
      if summary then take_summary() end
    end
  end
  if full or #ids < chunk then break end
  start = start + chunk
end
-- A session of nothing but its summary: the summary is its newest entry.
if summary then take_summary() end
return {truncated, used, kept_summary, unpack(picked)}
