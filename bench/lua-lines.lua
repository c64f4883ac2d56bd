-- The replay of bench/lua-lines.js: runs worq's function library (`dir`/library.lua) on a
-- recorded run (`dir`/log.json: each operation's name and arguments, then each command it made
-- with the reply it got), each command answered with its recorded reply, under a debug hook that
-- counts the VM instructions of each line of the library and the C functions (and redis.call) each
-- line calls. Entries up to `warm` (the warm-up) run uncounted. Prints the counts as JSON.
--   lua5.1 bench/lua-lines.lua <dir> <warm>
-- A global, as in Redis (the library reads it on its first call).
cjson = require('cjson')
local dir, warm = arg[1], tonumber(arg[2])
local f = assert(io.open(dir .. '/log.json')); local log = cjson.decode(f:read('*a')); f:close()
local at = 1
local function answer(kind, args)
  local e = log[at]
  if not e or e[1] ~= kind or string.upper(e[2][1]) ~= string.upper(args[1]) then
    error('lua-lines: replay diverged at entry ' .. at .. ': ' .. tostring(args[1]))
  end
  at = at + 1
  local r = e[3]
  if r == nil or r == cjson.null then return false end
  return r
end
local ops = {}
redis = {
  call = function(...) return answer('C', { ... }) end,
  pcall = function(...) return answer('P', { ... }) end,
  sha1hex = function(s) return string.format('%040x', #s) end,
  register_function = function(t) ops[t.function_name] = t.callback end,
  log = function() end,
}
local chunk = assert(loadfile(dir .. '/library.lua'))
chunk()
local byop = {}
for name, fn in pairs(ops) do byop[string.match(name, '^worq_%x+_(.+)$')] = fn end
-- steps[line] = VM instructions on that line; ccalls[line][name] = calls of C functions from it
local steps, ccalls, counting = {}, {}, false
local function hook(event)
  if not counting then return end
  if event == 'count' then
    local info = debug.getinfo(2, 'Sl')
    if info and string.find(info.source, 'library.lua', 1, true) then
      steps[info.currentline] = (steps[info.currentline] or 0) + 1
    end
  elseif event == 'call' then
    local callee = debug.getinfo(2, 'Sn')
    -- A C function, or this replay's stand-in for redis.call / redis.pcall.
    local stand_in = callee and callee.what == 'Lua' and string.find(callee.source, 'lua-lines.lua', 1, true)
    if stand_in then callee.name = 'redis.call' end
    if callee and (callee.what == 'C' or stand_in) then
      local caller = debug.getinfo(3, 'Sl')
      if caller and string.find(caller.source, 'library.lua', 1, true) then
        local l = caller.currentline
        local t = ccalls[l] or {}
        ccalls[l] = t
        local k = callee.name or '?'
        t[k] = (t[k] or 0) + 1
      end
    end
  end
end
local opcount = {}
local i = 1
while i <= #log do
  local e = log[i]
  if e[1] ~= 'F' then error('lua-lines: a command outside an operation at entry ' .. i) end
  at = i + 1
  local name = string.sub(e[2], 4)
  local fn = byop[name]
  counting = i > warm
  if counting then opcount[name] = (opcount[name] or 0) + 1 end
  debug.sethook(hook, 'c', 1)
  fn({ 'k' }, e[3])
  debug.sethook()
  i = at
end
local out = { steps = {}, ccalls = {}, ops = opcount }
for l, c in pairs(steps) do out.steps[tostring(l)] = c end
for l, t in pairs(ccalls) do out.ccalls[tostring(l)] = t end
print(cjson.encode(out))
