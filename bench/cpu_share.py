"""CPU time used by the service, the load generator and PostgreSQL over a
window, as shares of the machine (all cores), from /proc: what each part of a
measurement costs when they share one machine."""
import json
import os
import sys
import time

service, loadgen, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
tick = os.sysconf("SC_CLK_TCK")


def snapshot():
    usage = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        usage[int(pid)] = (comm, (int(fields[11]) + int(fields[12])) / tick)
    return usage


def group(pid, comm):
    if pid == service:
        return "service"
    if pid == loadgen:
        return "load generator"
    if comm == "postgres":
        return "postgres"
    return "other"


before = snapshot()
start = time.monotonic()
time.sleep(seconds)
after = snapshot()
elapsed = time.monotonic() - start
shares = {}
for pid, (comm, cpu) in after.items():
    used = cpu - before.get(pid, (comm, 0.0))[1]
    shares[group(pid, comm)] = shares.get(group(pid, comm), 0.0) + used
capacity = elapsed * os.cpu_count()
print(json.dumps({k: round(100 * v / capacity, 1) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}))
