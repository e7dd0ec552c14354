-- Append messages in the order given, each once: a retried write finds its ids already stored.
-- The MESSAGES_ADDED event is appended to the session's stream in the same step.
-- With long-term extraction on (the session's own setting, or the default given), the new
-- records also join the session's extraction backlog, in the same step: the job exists
-- exactly when the messages do, and outlives the session's buffer.
-- KEYS: meta, order, msgs, folded, events, extraction backlog
-- ARGV: default_ttl, events max_len, events max_age_ms, now_ms, event_prefix, max_new (the
--       most new messages the caller's quota reservation covers; -1 = no limit), extraction
--       default ('1' on, '0' off), backlog TTL seconds, then (id, record) pairs; each record
--       starts with {"seq":0, and gets the session's next sequence number here.
-- Returns one entry per pair ('N' new, 'D' duplicate, 'F' folded into a summary, then the
-- record or id), the meta hash, {prev event id, new event id or '', event JSON or ''},
-- the backlog's length (-1: extraction off) and 1 when this write started the backlog (it
-- was empty); or {'!', new} when more than max_new would be new (nothing is written then).
local FIRST_PAIR = 9
local max_new = tonumber(ARGV[6])
if max_new >= 0 then
  local new, seen = 0, {}
  for i = FIRST_PAIR, #ARGV, 2 do
    local id = ARGV[i]
    if not seen[id] and redis.call('HEXISTS', KEYS[3], id) == 0
        and redis.call('SISMEMBER', KEYS[4], id) == 0 then
      new = new + 1
    end
    seen[id] = true
  end
  if new > max_new then return {'!', new} end
end
local out = {}
local new_records = {}
local added_tokens = 0
for i = FIRST_PAIR, #ARGV, 2 do
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
local event = {newest_event_id(KEYS[5]), '', ''}
redis.call('HSETNX', KEYS[1], 'created_at', ARGV[4])
if #new_records > 0 then
  redis.call('HSET', KEYS[1], 'last_at', ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'tokens', added_tokens)
  local count = redis.call('HINCRBY', KEYS[1], 'count', #new_records)
  local payload = ARGV[5] .. table.concat(new_records, ',') .. ']}'
  local prev, id = append_event(KEYS[5], ARGV[2], ARGV[3], 'A', ARGV[4], payload, count, event[1])
  redis.call('HSET', KEYS[1], 'last_event', id)
  event = {prev, id, payload}
else
  redis.call('HSETNX', KEYS[1], 'last_at', ARGV[4])
end
refresh_ttl(ARGV[1], 5)
-- Each backlog entry: user id, agent id (the scope when it was written; '' for none) and the
-- record, a line each (scope ids hold no newline).
local backlog, started = -1, 0
if (redis.call('HGET', KEYS[1], 'long_term_extraction') or ARGV[7]) == '1' then
  if #new_records > 0 then
    if redis.call('EXISTS', KEYS[6]) == 0 then started = 1 end
    local user = redis.call('HGET', KEYS[1], 'user_id') or ''
    local agent = redis.call('HGET', KEYS[1], 'agent_id') or ''
    for i = 1, #new_records do
      redis.call('RPUSH', KEYS[6], user .. '\n' .. agent .. '\n' .. new_records[i])
    end
    redis.call('EXPIRE', KEYS[6], ARGV[8])
  end
  backlog = redis.call('LLEN', KEYS[6])
end
out[#out + 1] = redis.call('HGETALL', KEYS[1])
out[#out + 1] = event
out[#out + 1] = backlog
out[#out + 1] = started
return out
