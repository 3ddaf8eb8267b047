-- P2's load generator: wrk, one connection per thread, each thread a different user (its own JWT).
-- Arguments after "--": the JSON body, then one bearer token per thread.
-- Prints the 201s, the other answers, the run time and the latency percentiles for bench/p2.
local threads, next_id = {}, 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  created, failed = 0, 0
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[id + 1]}
  prepared = wrk.format("POST", nil, headers, args[1])
end

function request()
  return prepared
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else failed = failed + 1 end
end

function done(summary, latency, requests)
  local created_all, failed_all = 0, 0
  for _, thread in ipairs(threads) do
    created_all = created_all + thread:get("created")
    failed_all = failed_all + thread:get("failed")
  end
  io.write(string.format("created %d\nfailed %d\nerrors %d\nduration_us %d\n", created_all, failed_all,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration))
  for p = 1, 99 do io.write(string.format("p%d %d\n", p, latency:percentile(p))) end
  io.write(string.format("p99.9 %d\n", latency:percentile(99.9)))
end
