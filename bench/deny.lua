-- The benchmark's Lua peer (bench/run.py, configuration L): what users write by hand today instead
-- of api-warden. It takes the Bearer JWT from Authorization, base64url-decodes its payload, reads
-- the "username" claim with a pattern and answers 403 when it is in a Lua table of deny entries.
-- The table holds the same usernames the attack-list feed gives api-warden ("user-0" ..
-- "user-<N-1>", N = DENY_ENTRIES, set by run.py) plus the configuration's "mallory"; none matches
-- the benchmark request. Envoy runs this chunk once per Lua state (one per worker and the main
-- thread), so the table is built at load time, not per request.

local DENY_ENTRIES = {{entries}}

local deny = { mallory = true }
for i = 0, DENY_ENTRIES - 1 do
  deny["user-" .. i] = true
end

local B64 = {}
do
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  for i = 1, #alphabet do
    B64[alphabet:byte(i)] = i - 1
  end
  B64[("+"):byte()] = 62
  B64[("/"):byte()] = 63
end

local byte, char, concat = string.byte, string.char, table.concat

-- base64url (no padding) to bytes; nil on a character outside the alphabet.
local function b64url_decode(s)
  local out, n = {}, 0
  local acc, bits = 0, 0
  for i = 1, #s do
    local v = B64[byte(s, i)]
    if v == nil then
      if byte(s, i) ~= 61 then return nil end -- "=" padding ends the data
      break
    end
    acc = acc * 64 + v
    bits = bits + 6
    if bits >= 8 then
      bits = bits - 8
      local b = math.floor(acc / 2 ^ bits)
      acc = acc - b * 2 ^ bits
      n = n + 1
      out[n] = char(b)
    end
  end
  return concat(out)
end

function envoy_on_request(handle)
  local auth = handle:headers():get("authorization")
  if auth == nil then return end
  local token = auth:match("^[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)")
  if token == nil then return end
  local payload = token:match("^[^.]+%.([^.]+)%.")
  if payload == nil then return end
  local json = b64url_decode(payload)
  if json == nil then return end
  local user = json:match('"username"%s*:%s*"([^"]*)"')
  if user ~= nil and deny[user] then
    handle:respond({ [":status"] = "403" }, "blocked")
  end
end
