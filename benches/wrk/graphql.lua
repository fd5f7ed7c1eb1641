-- wrk script: POSTs the GraphQL request in the file named by $BODY (JSON) to the URL,
-- with `Authorization: $AUTH` when AUTH is set.
--   BODY=benches/queries/dashboard-100.json wrk -t1 -c1 -d15s --latency -s benches/wrk/graphql.lua http://127.0.0.1:8080/graphql
local file = assert(io.open(os.getenv("BODY"), "r"))
wrk.method = "POST"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local auth = os.getenv("AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
file:close()
