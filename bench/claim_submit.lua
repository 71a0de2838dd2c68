-- wrk script: each thread is one annotator on one connection, looping next -> submit.
-- Tokens come from the file named by TESSERA_BENCH_TOKENS (one per line, one per thread).
-- TESSERA_BENCH_THINK_MS (optional): the mean time an annotator spends on a task between
-- `next` and `submit`, drawn uniformly from 0.5x to 1.5x (0: no thinking, full speed).
local threads = {}
local count = 0
local tokens = {}

function setup(thread)
  if #tokens == 0 then
    for line in io.lines(os.getenv("TESSERA_BENCH_TOKENS")) do table.insert(tokens, line) end
  end
  count = count + 1
  thread:set("token", tokens[count])
  table.insert(threads, thread)
end

function init(args)
  cycles, empty, errors, phase, pending = 0, 0, 0, "next", nil
  think = tonumber(os.getenv("TESSERA_BENCH_THINK_MS") or "0")
  local seed = os.time()
  for i = 1, #token do seed = (seed * 31 + token:byte(i)) % 2147483647 end
  math.randomseed(seed)
  headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
end

function delay()
  if pending and think > 0 then return think * (0.5 + math.random()) end
  return 0
end

function request()
  if pending then
    phase = "submit"
    return wrk.format("POST", "/v1/assignments/" .. pending .. "/submit", headers,
                      '{"answers":[{"sentiment":"positive"}]}')
  end
  phase = "next"
  return wrk.format("POST", "/v1/assignments/next", headers, "{}")
end

function response(status, hdrs, body)
  if phase == "next" then
    pending = nil
    if status == 200 then
      pending = body:match('"assignments":%[{"id":(%d+)')
      if not pending then empty = empty + 1 end
    else
      errors = errors + 1
    end
  else
    pending = nil
    if status == 200 then cycles = cycles + 1 else errors = errors + 1 end
  end
end

function done(summary, latency, requests)
  local c, e, x = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("cycles"); e = e + t:get("empty"); x = x + t:get("errors")
  end
  io.write(string.format(
    'WRK {"cycles": %d, "empty": %d, "errors": %d, "requests": %d, "seconds": %.2f, ' ..
    '"p50_ms": %.2f, "p99_ms": %.2f}\n',
    c, e, x, summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
