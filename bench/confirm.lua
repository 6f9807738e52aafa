-- wrk script: follows confirmation links, one token per request, each
-- thread starting at its own place in the token list.
local tokens = {}
local i = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    tokens[#tokens + 1] = line
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#tokens)
end

function request()
  i = i + 1
  return wrk.format("GET", "/account/confirm-registration/?token=" .. tokens[(i % #tokens) + 1])
end
