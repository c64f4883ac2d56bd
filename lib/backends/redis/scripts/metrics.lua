--[[ metrics.lua: a queue's metrics (observe.lua): per-minute counts and the totals, read at once.
  KEYS[1]  a key of the queue (its slot)
  ARGV[1]  key namespace ('worq')
  ARGV[2]  queue
  ARGV[3]  how many minutes up to the current one to return
  Returns: { totals (`mt`, flat), minutes: { minute, flat, minute, flat, … } from the earlier of
  the window's first minute and the first minute not folded into the totals, to the current one }
  It folds finished minutes into the totals first, as the sweep does: a queue that is read (a
  Prometheus scrape) keeps its totals whole even while no pool of it runs.
]]
fold_metrics(QUEUE)
local current = now() - now() % 60000
local from = current - (tonumber(ARGV[3]) - 1) * 60000
local totals = rcall('HGETALL', key(QUEUE, 'mt'))
for i = 1, #totals - 1, 2 do
  if totals[i] == 'upto' and tonumber(totals[i + 1]) < from then from = tonumber(totals[i + 1]) end
end
local minutes = {}
for m = from, current, 60000 do
  local flat = rcall('HGETALL', key(QUEUE, 'm:' .. m))
  if #flat > 0 then
    minutes[#minutes + 1] = m
    minutes[#minutes + 1] = flat
  end
end
return { totals, minutes }
