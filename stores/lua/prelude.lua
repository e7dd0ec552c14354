-- Shared helpers, prepended to every script. KEYS[1] is always the session's meta hash.

-- Every record starts with {"seq":N,"tokens":N, so its token count is read without decoding it.
local function tokens_of(record)
  return tonumber(string.match(record, '^{"seq":%-?%d+,"tokens":(%d+)'))
end

-- The TTL slides: every write renews it for every key of the session.
local function refresh_ttl(default_ttl)
  local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl_seconds') or default_ttl)
  for i = 1, #KEYS do
    if ttl > 0 then
      redis.call('EXPIRE', KEYS[i], ttl)
    else
      redis.call('PERSIST', KEYS[i])
    end
  end
end
