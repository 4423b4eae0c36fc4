-- ARGV: prefix, worker, lease ids...
local worker = ARGV[2]
local now = now_ms()
for i = 3, #ARGV do
  local unit = held(worker, ARGV[i])
  if unit then
    drop_lease(unit, 'pending', now)
    redis.call('LPUSH', p .. 'pending', unit)
  end
end
return 0
