-- Copy a session's new events into the tenant's stream, in the session's order and each once,
-- and keep the tenant's session index in step with them (it lives in this, the tenant's,
-- slot: on Redis Cluster it cannot be part of the session's script).
-- KEYS: session index, tenant session-events stream, the session's fan-in mark (the id of its
--       newest event already copied)
-- ARGV: session_id, mark ttl ms (0 = none), events max_len, events max_age_ms, prev (the id
--       of the session's event before the first one given), then (id, kind, at, JSON) per
--       event, oldest first
-- Returns {} when done, or {mark} when an event between the mark and prev was never copied:
-- the caller then sends every event after the mark.
local function parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function newer(a, b)
  local a_ms, a_seq = parts(a)
  local b_ms, b_seq = parts(b)
  return a_ms > b_ms or (a_ms == b_ms and a_seq > b_seq)
end

local known = redis.call('GET', KEYS[3])
local mark = known or '0-0'
if newer(ARGV[5], mark) then return {mark} end
-- Per event: index, stream, then mark. A script that fails half-way keeps what it did, so
-- this order leaves every event either fully copied (and marked) or not at all.
for i = 6, #ARGV, 4 do
  local id, kind, at = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if newer(id, mark) then
    if kind == 'D' then
      redis.call('ZREM', KEYS[1], ARGV[1])
    elseif kind ~= 'S' then
      redis.call('ZADD', KEYS[1], at, ARGV[1])
    end
    append_event(KEYS[2], ARGV[3], ARGV[4], kind, at, ARGV[i + 3])
    mark = id
    redis.call('SET', KEYS[3], mark)
  end
end
if known or mark ~= '0-0' then
  if tonumber(ARGV[2]) > 0 then
    redis.call('PEXPIRE', KEYS[3], ARGV[2])
  else
    redis.call('PERSIST', KEYS[3])
  end
end
return {}
