-- One page of messages by sequence number, limit + 1 records so the caller knows if more exist.
-- KEYS: meta, order, msgs
-- ARGV: direction ('after' = oldest first, 'before' = newest first), exclusive bound or '', limit
local ids
if ARGV[1] == 'after' then
  local low = ARGV[2] == '' and '-inf' or '(' .. ARGV[2]
  ids = redis.call('ZRANGEBYSCORE', KEYS[2], low, '+inf', 'LIMIT', 0, tonumber(ARGV[3]) + 1)
else
  local high = ARGV[2] == '' and '+inf' or '(' .. ARGV[2]
  ids = redis.call('ZREVRANGEBYSCORE', KEYS[2], high, '-inf', 'LIMIT', 0, tonumber(ARGV[3]) + 1)
end
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[3], unpack(ids))
