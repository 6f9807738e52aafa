"""Turns one h2load run (its text output and its --log-file) into the JSON
that account-loadgen prints with --json, so that bench/report.py reads both
clients' figures alike.

h2load counts HTTP statuses only: a gRPC call that fails still answers HTTP
200 and carries its failure in the grpc-status trailer, which h2load does not
read. So "codes" holds HTTP status classes and h2load's own failures, and
"ok_throughput" counts 2xx answers; whether the calls were OK is checked with
account-loadgen, which reads every grpc-status.

    python3 bench/h2load_json.py OUTPUT.txt LOG.tsv SCENARIO
"""
import json
import re
import sys

output_path, log_path, scenario = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(output_path).read()


def number(pattern):
    m = re.search(pattern, text, re.M)
    if not m:
        sys.exit("h2load output has no match for %r:\n%s" % (pattern, text))
    return float(m.group(1))


finished = re.search(r"^finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s", text, re.M)
if not finished:
    sys.exit("h2load did not finish:\n" + text)
done = int(number(r"^requests: \d+ total, \d+ started, (\d+) done"))
# With -D, "finished in" includes the wait for the last answers after the
# measured window, and h2load's own rate is over that window alone.
rate = float(finished.group(3))
seconds = done / rate if rate else float(finished.group(1)) / {"us": 1e6, "ms": 1e3, "s": 1}[finished.group(2)]
codes = {}
for cls in ("2xx", "3xx", "4xx", "5xx"):
    n = int(number(r"^status codes: .*?(\d+) %s" % cls))
    if n:
        codes["HTTP_" + cls.upper()] = n
for kind in ("failed", "errored", "timeout"):
    n = int(number(r"^requests: .*?(\d+) %s" % kind))
    if n:
        codes["H2LOAD_" + kind.upper()] = n

# Microseconds until the end of each response, the log's third column.
latencies = []
with open(log_path) as log:
    for line in log:
        fields = line.split("\t")
        if len(fields) >= 3:
            latencies.append(int(fields[2]))
latencies.sort()


def quantile(q):
    if not latencies:
        return 0.0
    return latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1000


ok = codes.get("HTTP_2XX", 0)
print(json.dumps({
    "scenario": scenario,
    "client": "h2load",
    "requests": done,
    "duration_s": seconds,
    "throughput": done / seconds if seconds else 0.0,
    "ok_throughput": ok / seconds if seconds else 0.0,
    "latency_ms": {
        "p50": quantile(0.50), "p90": quantile(0.90), "p99": quantile(0.99),
        "max": latencies[-1] / 1000 if latencies else 0.0,
        "mean": sum(latencies) / len(latencies) / 1000 if latencies else 0.0,
    },
    "codes": codes,
}))
