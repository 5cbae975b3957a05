-- Replays a pool of pre-signed HTTP requests with wrk, and reports what wrk measured.
--
--   wrk -t T -c C -d Ds --latency -s bench/wrk_replay.lua URL -- POOL_FILE [MODE] [HOOK]
--
-- POOL_FILE  one request per line, fields separated by TAB:
--              METHOD  PATH  N  NAME1  VALUE1 ... NAMEn  VALUEn  BODY
--            (bench/wrk_bench.py writes it: SigV4-signed KMS requests; no field holds a TAB or
--            a newline). Each wrk thread loads the whole pool at init, before timing starts.
-- MODE       "roundrobin" (default; each thread starts at its own offset) or "random"
--            (every request picks a pool entry at random).
-- HOOK       "on" (default) counts answers by status class in a response() hook and keeps
--            one sample of a non-2xx answer; "off" leaves response() undefined, so wrk does
--            not parse headers and bodies (wrk still counts status >= 400 itself).
--
-- done() prints one line "WRK_REPLAY_RESULT {json}" with wrk's summary (requests, duration,
-- socket errors, status errors), latency percentiles including p99.9 (microseconds) and, with
-- the hook, the per-thread status counters added up.

local threads = {}

function setup(thread)
   threads[#threads + 1] = thread
   thread:set("thread_number", #threads)
end

local pool = {}
local pool_size = 0
local position = 0
local mode = "roundrobin"

-- Per-thread counters: globals, so that done() can read them with thread:get().
n2xx, n3xx, n4xx, n5xx, nother = 0, 0, 0, 0, 0
error_sample = ""
hook_on = false

local function split_tabs(line)
   local fields, start = {}, 1
   while true do
      local i = string.find(line, "\t", start, true)
      if not i then
         fields[#fields + 1] = string.sub(line, start)
         return fields
      end
      fields[#fields + 1] = string.sub(line, start, i - 1)
      start = i + 1
   end
end

local function load_pool(path)
   local file = assert(io.open(path, "rb"))
   for line in file:lines() do
      if line ~= "" then
         local f = split_tabs(line)
         local count = tonumber(f[3])
         local headers = {}
         for i = 0, count - 1 do
            headers[f[4 + 2 * i]] = f[5 + 2 * i]
         end
         local body = f[4 + 2 * count] or ""
         pool_size = pool_size + 1
         pool[pool_size] = wrk.format(f[1], f[2], headers, body)
      end
   end
   file:close()
   assert(pool_size > 0, "empty request pool: " .. path)
end

local function count_response(status, headers, body)
   if status >= 200 and status < 300 then
      n2xx = n2xx + 1
   else
      if status >= 500 and status < 600 then
         n5xx = n5xx + 1
      elseif status >= 400 then
         n4xx = n4xx + 1
      elseif status >= 300 then
         n3xx = n3xx + 1
      else
         nother = nother + 1
      end
      if error_sample == "" then
         error_sample = "HTTP " .. status .. ": " .. string.sub(body or "", 1, 300)
      end
   end
end

function init(args)
   -- wrk passes the URL as args[0] and the words after "--" as args[1], args[2], ...
   local path = args[1] or os.getenv("WRK_POOL_FILE")
   assert(path, "usage: wrk ... -s wrk_replay.lua URL -- POOL_FILE [MODE] [HOOK]")
   mode = args[2] or "roundrobin"
   local hook = args[3] or "on"
   load_pool(path)
   math.randomseed(os.time() + 7919 * (thread_number or 1))
   -- Each thread starts its round at its own place in the pool.
   position = math.random(pool_size) - 1
   hook_on = hook == "on"
   if hook_on then
      response = count_response
   end
end

function request()
   if mode == "random" then
      return pool[math.random(pool_size)]
   end
   position = position % pool_size + 1
   return pool[position]
end

local function json_string(s)
   return '"' .. string.gsub(s, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end) .. '"'
end

function done(summary, latency, requests)
   local t2, t3, t4, t5, tother, sample = 0, 0, 0, 0, 0, ""
   for _, thread in ipairs(threads) do
      t2 = t2 + (thread:get("n2xx") or 0)
      t3 = t3 + (thread:get("n3xx") or 0)
      t4 = t4 + (thread:get("n4xx") or 0)
      t5 = t5 + (thread:get("n5xx") or 0)
      tother = tother + (thread:get("nother") or 0)
      local s = thread:get("error_sample") or ""
      if sample == "" then
         sample = s
      end
   end
   local e = summary.errors
   local parts = {
      string.format('"duration_us":%d', summary.duration),
      string.format('"requests":%d', summary.requests),
      string.format('"bytes":%d', summary.bytes),
      string.format(
         '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
         e.connect, e.read, e.write, e.status, e.timeout
      ),
      string.format(
         '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,'
            .. '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p99_9":%d}',
         latency.min, latency.mean, latency.stdev, latency.max,
         latency:percentile(50), latency:percentile(75), latency:percentile(90),
         latency:percentile(99), latency:percentile(99.9)
      ),
      string.format('"hook":%s', tostring(threads[1] and threads[1]:get("hook_on") or false)),
      string.format(
         '"statuses":{"2xx":%d,"3xx":%d,"4xx":%d,"5xx":%d,"other":%d}',
         t2, t3, t4, t5, tother
      ),
      '"error_sample":' .. json_string(sample),
      string.format('"pool_size":%d', pool_size),
      '"mode":' .. json_string(mode),
   }
   io.write("WRK_REPLAY_RESULT {" .. table.concat(parts, ",") .. "}\n")
end
