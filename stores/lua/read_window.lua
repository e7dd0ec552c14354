-- The context window: the newest messages within a count and an optional token budget,
-- with the session's summary kept first when asked. Costs O(window), not O(session).
-- KEYS: meta, order, msgs
-- ARGV: max_count, token_budget (-1 = none), keep_summary (1/0)
-- Returns: truncated (0/1), tokens used, summary record or '', picked records newest first.
local max_count = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local used = 0
local truncated = 0
local summary_id = false
local summary = ''
if ARGV[3] == '1' then
  summary_id = redis.call('HGET', KEYS[1], 'summary')
  if summary_id then
    local record = redis.call('HGET', KEYS[3], summary_id)
    if record then
      local tokens = tokens_of(record)
      if max_count > 0 and (budget < 0 or tokens <= budget) then
        summary = record
        used = tokens
        max_count = max_count - 1
      else
        truncated = 1
      end
    end
  end
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
      if #picked >= max_count or (budget >= 0 and used + tokens > budget) then
        truncated = 1
        full = true
        break
      end
      used = used + tokens
      picked[#picked + 1] = records[i]
    end
  end
  if full or #ids < chunk then break end
  start = start + chunk
end
return {truncated, used, summary, unpack(picked)}
