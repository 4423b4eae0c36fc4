-- ARGV: prefix, job, created_ms, spec, model_sha256, problems, unit ids...
local job = ARGV[2]
local j = jkey(job)
if redis.call('EXISTS', j) == 1 then return redis.error_reply('JOB_EXISTS') end
local units = #ARGV - 6
local st = 'queued'
if units == 0 then st = 'succeeded' end
redis.call('HSET', j, 'spec', ARGV[4], 'model_sha256', ARGV[5], 'state', st, 'message', '',
  'created_at_ms', ARGV[3], 'updated_at_ms', ARGV[3], 'problems', ARGV[6],
  'units_total', units, 'units_done', 0, 'units_leased', 0, 'trajectories', 0, 'correct', 0,
  'completion_tokens', 0, 'tool_calls', 0, 'lease_expirations', 0, 'errored', 0)
local i = 7
while i <= #ARGV do
  local last = math.min(i + 999, #ARGV)
  redis.call('RPUSH', p .. 'pending', unpack(ARGV, i, last))
  i = last + 1
end
redis.call('ZADD', p .. 'jobs', ARGV[3], job)
return units
