-- Copy a session's new events into the tenant's stream, in the session's order and each once,
-- and keep the tenant's session index and ledger of stored messages in step with them (they
-- live in this, the tenant's, slot: on Redis Cluster they cannot be part of the session's
-- script).
-- KEYS: session index, tenant session-events stream, the session's fan-in mark (the id of its
--       newest event already copied), message ledger, message leases
-- ARGV: session_id, mark ttl ms (0 = none, -1 = leave it), events max_len, events max_age_ms, prev (the id
--       of the session's event before the first one given), the writer's lease ('' = none),
--       then (id, kind, at, JSON, message count or '') per event, oldest first
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
local session = ARGV[1]

-- The ledger holds, per session, the messages it held as of its newest copied event (events
-- carry that count), and their sum in _used (session ids never start with '_').
local function count_messages(count)
  if count == '' then return end -- an event written before events carried counts
  local old = tonumber(redis.call('HGET', KEYS[4], session) or '0')
  local new = tonumber(count)
  if new > 0 then
    redis.call('HSET', KEYS[4], session, new)
  else
    redis.call('HDEL', KEYS[4], session)
  end
  if new ~= old then redis.call('HINCRBY', KEYS[4], '_used', new - old) end
end

local function drop_lease(member)
  if redis.call('ZREM', KEYS[5], member) == 1 then
    redis.call('HINCRBY', KEYS[4], '_reserved', -tonumber(string.match(member, '^(%d+):')))
  end
end

local known = redis.call('GET', KEYS[3])
local mark = known or '0-0'
if newer(ARGV[5], mark) then return {mark} end
-- Per event: index, stream, ledger, then mark. A script that fails half-way keeps what it
-- did, so this order leaves every event either fully copied (and marked) or not at all.
for i = 7, #ARGV, 5 do
  local id, kind, at = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if newer(id, mark) then
    if kind == 'D' then
      redis.call('ZREM', KEYS[1], session)
    elseif kind ~= 'S' then
      redis.call('ZADD', KEYS[1], at, session)
    end
    append_event(KEYS[2], ARGV[3], ARGV[4], kind, at, ARGV[i + 3])
    count_messages(ARGV[i + 4])
    mark = id
    redis.call('SET', KEYS[3], mark)
  end
end
local mark_ttl = tonumber(ARGV[2])
if (known or mark ~= '0-0') and mark_ttl >= 0 then
  if mark_ttl > 0 then
    redis.call('PEXPIRE', KEYS[3], mark_ttl)
  else
    redis.call('PERSIST', KEYS[3])
  end
end
-- The session's events up to the writer's own are counted now: its reservation is done.
if ARGV[6] ~= '' then drop_lease(ARGV[6]) end
-- So are the writes of this session's expired reservations, if they ever landed: their
-- writers gave up (or died) long ago, and every event the session wrote before this one has
-- been copied.
local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now_ms(), 'LIMIT', 0, 64)
for i = 1, #expired do
  if string.match(expired[i], '^%d+:%x+:(.*)$') == session then drop_lease(expired[i]) end
end
return {}
