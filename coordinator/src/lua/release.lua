-- ARGV: prefix, worker, now_ms, lease ids...
local worker = ARGV[2]
local now = tonumber(ARGV[3])
for i = 4, #ARGV do
  local unit = held(worker, ARGV[i])
  if unit then
    drop_lease(unit, 'pending', now)
    redis.call('LPUSH', p .. 'pending', unit)
  end
end
return 0
