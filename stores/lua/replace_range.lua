-- Replace the oldest messages by their summary, only if they are still exactly the ones that
-- were summarized: messages written meanwhile have higher sequence numbers and stay untouched.
-- KEYS: meta, order, msgs, folded
-- ARGV: default_ttl, last_seq, summary_id, summary_record, channel, event, expected ids...
-- Returns 1 when replaced, 0 when the range changed (nothing is written then).
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
if #ids ~= #ARGV - 6 or #ids == 0 then return 0 end
for i = 1, #ids do
  if ids[i] ~= ARGV[i + 6] then return 0 end
end
local records = redis.call('HMGET', KEYS[3], unpack(ids))
local removed_tokens = 0
for i = 1, #records do removed_tokens = removed_tokens + tokens_of(records[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
redis.call('HDEL', KEYS[3], unpack(ids))
redis.call('SADD', KEYS[4], unpack(ids))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
redis.call('HINCRBY', KEYS[1], 'tokens', tokens_of(ARGV[4]) - removed_tokens)
redis.call('HINCRBY', KEYS[1], 'count', 1 - #ids)
redis.call('HINCRBY', KEYS[1], 'summaries', 1)
redis.call('HSET', KEYS[1], 'summary', ARGV[3])
refresh_ttl(ARGV[1])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
