-- wrk script: POSTs the GraphQL request in the file named by $BODY (JSON) to the URL.
--   BODY=benches/queries/dashboard-100.json wrk -t1 -c1 -d15s --latency -s benches/wrk/graphql.lua http://127.0.0.1:8080/graphql
local file = assert(io.open(os.getenv("BODY"), "r"))
wrk.method = "POST"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/graphql-response+json"
file:close()

local errors = 0
function response(status, headers, body)
  if status ~= 200 or body:find('"errors"', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("graphql errors or non-200: %d\n", errors))
end
