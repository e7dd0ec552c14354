-- Shared helpers, prepended to every script. In session scripts KEYS[1] is the session's meta
-- hash.

-- Every record starts with {"seq":N,"tokens":N, so its token count is read without decoding it.
local function tokens_of(record)
  return tonumber(string.match(record, '^{"seq":%-?%d+,"tokens":(%d+)'))
end

-- The TTL slides: every write renews it for every key of the session (the first key_count
-- keys; all by default). Returns the TTL.
local function refresh_ttl(default_ttl, key_count)
  local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl_seconds') or default_ttl)
  for i = 1, key_count or #KEYS do
    if ttl > 0 then
      redis.call('EXPIRE', KEYS[i], ttl)
    else
      redis.call('PERSIST', KEYS[i])
    end
  end
  return ttl
end

-- Event streams. Each entry holds p (the id of the entry before it, '0-0' for none), k (its
-- kind: A added, C config, S summarized, D deleted, M memory), a (when, ms) and e (the
-- event's JSON); p lets a reader prove it missed nothing. A session's entries also hold n
-- (the messages the session holds after the change): the tenant's ledger of stored messages
-- follows them in the session's order. Each entry is also published, on a channel named like
-- the stream, as "<id> <p> <e>".
local function newest_event_id(stream)
  local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  return newest[1] and newest[1][1] or '0-0'
end

-- The server's clock in ms, read once per script: one step of a script happens at one time.
local script_now_ms
local function now_ms()
  if not script_now_ms then
    local now = redis.call('TIME')
    script_now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  end
  return script_now_ms
end

-- Appends an event (with the session's message count, when given) and trims the stream to
-- max_len entries and max_age_ms (by the server's clock, which also stamps the ids). Returns
-- the previous and the new id. A caller that just read the newest id gives it as prev.
local function append_event(stream, max_len, max_age_ms, kind, at, payload, count, prev)
  prev = prev or newest_event_id(stream)
  local id
  if count then
    id = redis.call('XADD', stream, 'MAXLEN', max_len, '*',
      'p', prev, 'k', kind, 'a', at, 'e', payload, 'n', count)
  else
    id = redis.call(
      'XADD', stream, 'MAXLEN', max_len, '*', 'p', prev, 'k', kind, 'a', at, 'e', payload)
  end
  local age = tonumber(max_age_ms)
  if age > 0 then
    local oldest = now_ms() - age
    redis.call('XTRIM', stream, 'MINID', string.format('%d', oldest))
  end
  redis.call('PUBLISH', stream, id .. ' ' .. prev .. ' ' .. payload)
  return prev, id
end
