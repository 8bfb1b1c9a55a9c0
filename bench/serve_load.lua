-- wrk script for POST /predict: one multipart upload of IMAGE with a bearer token.
-- Used by bench/serve_load.sh: wrk -s bench/serve_load.lua ... -- TOKEN IMAGE
local boundary = "kt-wrk-boundary-3f1c"

function init(args)
  local token, image = args[1], args[2]
  local f = assert(io.open(image, "rb"))
  local data = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
  wrk.body = "--" .. boundary .. "\r\n" ..
             "Content-Disposition: form-data; name=\"file\"; filename=\"scalp.jpg\"\r\n" ..
             "Content-Type: image/jpeg\r\n\r\n" .. data .. "\r\n--" .. boundary .. "--\r\n"
end

local bad = 0
function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n") end
  end
end
