"""Running wrk with a generated Lua script and reading its report."""
import re
import subprocess
import tempfile
from dataclasses import dataclass

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}

# Each wrk thread runs its own Lua state: seeded apart, so that no two draw the same numbers.
SEED_PER_THREAD = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  math.randomseed(%(seed)d * 1000 + id)
end
"""

RANDOM_GET = SEED_PER_THREAD + """
request = function()
  return wrk.format("GET", string.format("%(path)s", math.random(%(first)d, %(last)d)))
end
"""

ADD_AND_REDUCE = SEED_PER_THREAD + """
local n = 0
request = function()
  n = n + 1
  local path = (n %% 2 == 0) and "%(path)s/add" or "%(path)s/reduce"
  local body = string.format('{"product_id": %%d, "quantity": 1, "reason": "压测", "operator": "bench"}',
                             math.random(%(first)d, %(last)d))
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
"""

# `size` movements, alternately receipts and issues of one unit, in one all-or-nothing batch.
BATCH = SEED_PER_THREAD + """
request = function()
  local changes = {}
  for i = 1, %(size)d do
    local action = (i %% 2 == 0) and "add" or "reduce"
    changes[i] = string.format('{"action": "%%s", "product_id": %%d, "quantity": 1, "reason": "压测"}',
                               action, math.random(%(first)d, %(last)d))
  end
  local body = '{"changes": [' .. table.concat(changes, ",") .. ']}'
  return wrk.format("POST", "/api/stock/batch", {["Content-Type"] = "application/json"}, body)
end
"""

# A client walking the ledger by cursor: each thread starts at a random id and follows
# `next_before_id` from every answer, starting again elsewhere at the end.
WALK = SEED_PER_THREAD + """
local cursor = nil
request = function()
  if cursor == nil then cursor = math.random(%(first)d, %(last)d) end
  return wrk.format("GET", string.format("%(path)s", cursor))
end
response = function(status, headers, body)
  local following = string.match(body, '"next_before_id":(%%d+)')
  cursor = following and tonumber(following) or nil
end
"""

# A sort drawn from `sorts` (both directions) and a page anywhere in the list.
SORTED_PAGES = SEED_PER_THREAD + """
local sorts = {%(sorts)s}
request = function()
  local sort = sorts[math.random(#sorts)]
  return wrk.format("GET", string.format("%(path)s", sort, math.random(%(first)d, %(last)d)))
end
"""

# A client walking a list by cursor: each thread draws a sort and a page to start at,
# then follows `next_after` from every answer, and draws again at the end of the list.
SORTED_WALK = SEED_PER_THREAD + """
local sorts = {%(sorts)s}
local sort, cursor = nil, nil
request = function()
  if cursor == nil then
    sort = sorts[math.random(#sorts)]
    return wrk.format("GET", string.format("%(path)s&page=%%d", sort, math.random(%(first)d, %(last)d)))
  end
  return wrk.format("GET", string.format("%(path)s&after=%%s", sort, cursor))
end
response = function(status, headers, body)
  cursor = string.match(body, '"next_after":"([%%w_%%-]+)"')
end
"""

# A time range drawn from first..last (unix seconds), to the second: almost always
# with partial days at both ends; with `products`, for one product drawn from 1..products.
RANGES = SEED_PER_THREAD + """
local function instant(t) return os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ", t) end
request = function()
  local from = math.random(%(first)d, %(last)d)
  local path = string.format("%(path)s", instant(from), instant(math.random(from, %(last)d)))
  if %(products)d > 0 then path = path .. "&product_id=" .. math.random(1, %(products)d) end
  return wrk.format("GET", path)
end
"""


@dataclass
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    # Filled in by the bench, which knows the server: its workers' CPU per request, and
    # the local database server's (MySQL/MariaDB; None for SQLite, inside the workers).
    worker_cpu_us: float | None = None
    database_cpu_us: float | None = None


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * UNITS[unit]


def run(url: str, script: str, duration: int, connections: int, threads: int = 2) -> Result:
    """wrk against `url`; errors are non-2xx answers plus socket errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        report = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s",
             "-s", lua.name, url],
            capture_output=True, text=True, check=True, timeout=duration + 60,
        ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", report, re.MULTILINE))
    if len(percentiles) < 2:
        raise RuntimeError(f"wrk reported no latency distribution:\n{report}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    return Result(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1)),
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        requests=int(re.search(r"(\d+) requests in", report).group(1)),
        errors=(int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0),
    )
