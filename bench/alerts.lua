-- wrk script for the intake benchmark: every request is a distinct firing Alertmanager
-- notification (one alert, its own fingerprint, startsAt and model_id), so responder never takes
-- the duplicate short-cut. Arguments after "--": <bearer token> <round tag (a number)>.
-- done() prints one line "BENCH_JSON {...}" with the latency percentiles (microseconds) and
-- the count of each HTTP status seen.

local threads = {}
local counter = 0
local token = ""
local tag = 0
statuses = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  token = args[1] or ""
  tag = tonumber(args[2] or "0") or 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

local template = '{"receiver":"responder","status":"firing","alerts":[{"status":"firing",' ..
  '"labels":{"alertname":"model_drift_detected","model_id":"%s","model_version":"2026.11.1",' ..
  '"segment":"eu","severity":"warning"},' ..
  '"annotations":{"psi":"0.31","summary":"PSI 0.31 above 0.20 for segment eu"},' ..
  '"startsAt":"%s","endsAt":"0001-01-01T00:00:00Z",' ..
  '"generatorURL":"http://prometheus.bench.internal:9090/graph?g0.expr=model_feature_psi%%3E0.2",' ..
  '"fingerprint":"%s"}],' ..
  '"groupLabels":{"alertname":"model_drift_detected","model_id":"%s"},' ..
  '"commonLabels":{"alertname":"model_drift_detected","model_id":"%s","model_version":"2026.11.1",' ..
  '"segment":"eu","severity":"warning"},' ..
  '"commonAnnotations":{"psi":"0.31","summary":"PSI 0.31 above 0.20 for segment eu"},' ..
  '"externalURL":"http://alertmanager.bench.internal:9093","version":"4",' ..
  '"groupKey":"{}:{alertname=\\"model_drift_detected\\", model_id=\\"%s\\"}","truncatedAlerts":0}'

function request()
  counter = counter + 1
  local fingerprint = string.format("%04x%02x%010x", tag % 65536, thread_id % 256, counter)
  local model = string.format("bench-%d-%d-%d", tag, thread_id, counter)
  local starts = os.date("!%Y-%m-%dT%H:%M:%S", os.time()) .. string.format(".%09dZ", counter % 1000000000)
  local body = string.format(template, model, starts, fingerprint, model, model, model)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    if seen then
      for code, n in pairs(seen) do
        counts[tostring(code)] = (counts[tostring(code)] or 0) + n
      end
    end
  end
  local parts = {}
  for code, n in pairs(counts) do
    table.insert(parts, string.format('"%s":%d', code, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},' ..
    '"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ",")))
end
