-- Set or clear (empty value) per-session settings; creates the session if it is new. The
-- CONFIG_CHANGED event, carrying the meta hash as it now is, is appended in the same step.
-- KEYS: meta, order, msgs, folded, events
-- ARGV: default_ttl, events max_len, events max_age_ms, now_ms, event_prefix (JSON up to
--       the meta object), then (field, value) pairs
-- Returns the meta hash and {prev event id, new event id, event JSON}.
for i = 6, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('HSETNX', KEYS[1], 'created_at', ARGV[4])
redis.call('HSET', KEYS[1], 'last_at', ARGV[4])
local flat = redis.call('HGETALL', KEYS[1])
local meta = {}
for i = 1, #flat, 2 do meta[flat[i]] = flat[i + 1] end
local payload = ARGV[5] .. cjson.encode(meta) .. '}'
local prev, id = append_event(KEYS[5], ARGV[2], ARGV[3], 'C', ARGV[4], payload,
  meta.count or 0)
redis.call('HSET', KEYS[1], 'last_event', id)
refresh_ttl(ARGV[1])
return {redis.call('HGETALL', KEYS[1]), {prev, id, payload}}
