-- wrk script: every connection cycles through a mix of all endpoints.
-- Requests come from the file bench/load.py passes after "--".

local requests = {}
local counter = 0

local function read_file(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("*a")
  f:close()
  return text
end

-- One request a line, "METHOD PATH<TAB>BODY" (BODY may be empty).
init = function(args)
  local path = assert(args[1], "pass the requests file after --")
  for line in read_file(path):gmatch("[^\n]+") do
    local head, body = line:match("^([^\t]*)\t?(.*)$")
    local method, target = head:match("^(%S+) (%S+)$")
    local headers = {}
    if body ~= "" then headers["Content-Type"] = "application/json" else body = nil end
    requests[#requests + 1] = wrk.format(method, target, headers, body)
  end
end

request = function()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

done = function(summary, latency, requests_)
  local errors = summary.errors
  io.write(string.format(
    "RESULT {\"requests\": %d, \"duration_s\": %.3f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, " ..
    "\"connect_errors\": %d, \"read_errors\": %d, \"write_errors\": %d, \"status_errors\": %d, \"timeouts\": %d}\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
