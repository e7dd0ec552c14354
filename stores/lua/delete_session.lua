-- Delete a session and append SESSION_DELETED to its stream in the same step. The stream
-- outlives the session by the events' max age, so subscribers can still resume through it.
-- KEYS: meta, order, msgs, folded, events, lock
-- ARGV: events max_len, events max_age_ms, now_ms, event JSON
-- Returns {1, prev event id, new event id, event JSON}, or {0, newest event id, '', ''} when
-- there was no session.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, newest_event_id(KEYS[5]), '', ''}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6])
local prev, id = append_event(KEYS[5], ARGV[1], ARGV[2], 'D', ARGV[3], ARGV[4], 0)
redis.call('PEXPIRE', KEYS[5], ARGV[2])
return {1, prev, id, ARGV[4]}
