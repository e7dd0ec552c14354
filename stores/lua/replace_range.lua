-- Replace the oldest messages by their summary, only if they are still exactly the ones that
-- were summarized: messages written meanwhile have higher sequence numbers and stay untouched.
-- The SESSION_SUMMARIZED event is appended in the same step.
-- KEYS: meta, order, msgs, folded, events
-- ARGV: default_ttl, events max_len, events max_age_ms, now_ms, last_seq, summary_id,
--       summary_record, event JSON, expected ids...
-- Returns {prev event id, new event id, event JSON, the session's TTL, its message count}
-- when replaced, {} when the range changed (nothing is written then).
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
if #ids ~= #ARGV - 8 or #ids == 0 then return {} end
for i = 1, #ids do
  if ids[i] ~= ARGV[i + 8] then return {} end
end
local records = redis.call('HMGET', KEYS[3], unpack(ids))
local removed_tokens = 0
for i = 1, #records do removed_tokens = removed_tokens + tokens_of(records[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
redis.call('HDEL', KEYS[3], unpack(ids))
redis.call('SADD', KEYS[4], unpack(ids))
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
redis.call('HSET', KEYS[3], ARGV[6], ARGV[7])
redis.call('HINCRBY', KEYS[1], 'tokens', tokens_of(ARGV[7]) - removed_tokens)
local count = redis.call('HINCRBY', KEYS[1], 'count', 1 - #ids)
redis.call('HINCRBY', KEYS[1], 'summaries', 1)
redis.call('HSET', KEYS[1], 'summary', ARGV[6])
local prev, id = append_event(KEYS[5], ARGV[2], ARGV[3], 'S', ARGV[4], ARGV[8], count)
redis.call('HSET', KEYS[1], 'last_event', id)
local ttl = refresh_ttl(ARGV[1])
return {prev, id, ARGV[8], ttl, count}
