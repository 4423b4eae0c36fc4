-- ARGV: prefix, worker, unit, lease, shard (encoded ShardInfo, '' when failed), error,
-- rows, correct, completion_tokens, tool_calls, max_failures, errored. Returns {accepted, reason}.
local worker = ARGV[2]
local now = now_ms()
local unit = ARGV[3]
local lease = ARGV[4]
local shard = ARGV[5]
local err = ARGV[6]
local u = ukey(unit)
if redis.call('EXISTS', u) == 0 then return {0, 'unknown unit'} end
local f = redis.call('HMGET', u, 'state', 'done_lease', 'job', 'expires_ms')
if f[1] == 'done' then
  if f[2] == lease then return {1, 'already recorded'} end
  return {0, 'the unit was done under another lease'}
end
if held(worker, lease) ~= unit then
  return {0, 'lease not held: it expired or was given back, and the unit was queued again'}
end
if tonumber(f[4]) <= now then
  expire(unit, now)
  return {0, 'the lease expired before the report'}
end
local j = jkey(f[3])
local js = redis.call('HGET', j, 'state')
if terminal(js) then
  drop_lease(unit, 'dropped', now)
  return {0, 'the job is ' .. js}
end
if err ~= '' or shard == '' then
  drop_lease(unit, 'pending', now)
  local failures = redis.call('HINCRBY', u, 'failures', 1)
  if failures >= tonumber(ARGV[11]) then
    redis.call('HSET', j, 'state', 'failed', 'message',
      'unit ' .. unit .. ' failed ' .. failures .. ' times; last error: ' .. err)
  else
    redis.call('LPUSH', p .. 'pending', unit)
  end
  return {1, 'failure recorded; the unit is queued again'}
end
drop_lease(unit, 'done', now)
redis.call('HSET', u, 'done_lease', lease)
redis.call('HSET', j .. ':shards', unit, shard)
redis.call('HINCRBY', j, 'trajectories', ARGV[7])
redis.call('HINCRBY', j, 'correct', ARGV[8])
redis.call('HINCRBY', j, 'completion_tokens', ARGV[9])
redis.call('HINCRBY', j, 'tool_calls', ARGV[10])
redis.call('HINCRBY', j, 'errored', ARGV[12])
local done = redis.call('HINCRBY', j, 'units_done', 1)
if done >= tonumber(redis.call('HGET', j, 'units_total')) then
  redis.call('HSET', j, 'state', 'succeeded')
end
return {1, ''}
