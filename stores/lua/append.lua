-- Append messages in the order given, each once: a retried write finds its ids already stored.
-- KEYS: meta, order, msgs, folded
-- ARGV: default_ttl, now_ms, channel, event_prefix, then (id, record) pairs; each record
--       starts with {"seq":0, and gets the session's next sequence number here.
local out = {}
local new_records = {}
local added_tokens = 0
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  local existing = redis.call('HGET', KEYS[3], id)
  if existing then
    out[#out + 1] = 'D' .. existing
  elseif redis.call('SISMEMBER', KEYS[4], id) == 1 then
    out[#out + 1] = 'F' .. id
  else
    local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    local record = '{"seq":' .. seq .. string.sub(ARGV[i + 1], 9)
    redis.call('HSET', KEYS[3], id, record)
    redis.call('ZADD', KEYS[2], seq, id)
    added_tokens = added_tokens + tokens_of(record)
    new_records[#new_records + 1] = record
    out[#out + 1] = 'N' .. record
  end
end
redis.call('HSETNX', KEYS[1], 'created_at', ARGV[2])
redis.call('HSET', KEYS[1], 'last_at', ARGV[2])
if #new_records > 0 then
  redis.call('HINCRBY', KEYS[1], 'tokens', added_tokens)
  redis.call('HINCRBY', KEYS[1], 'count', #new_records)
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. table.concat(new_records, ',') .. ']}')
end
refresh_ttl(ARGV[1])
out[#out + 1] = redis.call('HGETALL', KEYS[1])
return out
