-- wrk script of the bench (Debian's wrk 4.x, LuaJIT). Configured by environment variables:
--   BENCH_METHOD, BENCH_PATH, BENCH_BODY, BENCH_CTYPE   one fixed request (the default mode)
--   BENCH_PAIRS=<file>, BENCH_THREADS   get + make_used pairs instead: line k of the file is token k's
--     form body (service secret, token, code); the token's next_url is /p/k, which /sso/get/ answers,
--     so make_used for k goes out only after get for k was answered, as a service does it.
-- done() prints one JSON line: requests, seconds, errors, latency percentiles (ms).
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body = os.getenv("BENCH_BODY")
local ctype = os.getenv("BENCH_CTYPE")
local pairsFile = os.getenv("BENCH_PAIRS")
local getPath = os.getenv("BENCH_GET_PATH") or "/sso/get/"
local usedPath = os.getenv("BENCH_USED_PATH") or "/sso/make_used/"

local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local bodies = {}
local mine = {}
local nextToken = 1
exhausted = 0
local ready = {}
local fixed = nil
local headers = {}

function init(args)
  if ctype ~= nil then headers["Content-Type"] = ctype end
  if pairsFile ~= nil then
    local n = tonumber(os.getenv("BENCH_THREADS") or "1")
    local i = 0
    for line in io.lines(pairsFile) do
      if i % n == id then
        bodies[i + 1] = line
        table.insert(mine, i + 1)
      end
      i = i + 1
    end
  else
    fixed = wrk.format(method, path, headers, body)
  end
end

function request()
  if fixed ~= nil then return fixed end
  local k = table.remove(ready)
  if k ~= nil then return wrk.format("POST", usedPath, headers, bodies[k]) end
  if nextToken > #mine then
    exhausted = 1
    wrk.thread:stop()
    -- stop() takes effect after this request: send a harmless one.
    return wrk.format("POST", getPath, headers, "token=x")
  end
  local b = bodies[mine[nextToken]]
  nextToken = nextToken + 1
  return wrk.format("POST", getPath, headers, b)
end

if pairsFile ~= nil then
  function response(status, hdrs, b)
    local k = b and string.match(b, '"next_url":"/p/(%d+)"')
    if k ~= nil and status == 200 then table.insert(ready, tonumber(k)) end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local out = 0
  for _, t in ipairs(threads) do out = out + (t:get("exhausted") or 0) end
  io.write(string.format(
    '{"exhausted":%d,"requests":%d,"seconds":%f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"latency":{"p50":%f,"p99":%f,"max":%f,"mean":%f}}\n',
    out, summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000))
end
