"""CPU time used by the service, the load generator (with its children) and
PostgreSQL over a window, as shares of the machine (all cores), from /proc:
what each part of a measurement costs when they share one machine."""
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
        usage[int(pid)] = (comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return usage


def group(pid, comm, parent):
    if pid == service:
        return "service"
    # A load generator started from a shell function runs as that shell's child.
    if loadgen in (pid, parent):
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
for pid, (comm, parent, cpu) in after.items():
    used = cpu - before.get(pid, (comm, parent, 0.0))[2]
    name = group(pid, comm, parent)
    shares[name] = shares.get(name, 0.0) + used
capacity = elapsed * os.cpu_count()
print(json.dumps({k: round(100 * v / capacity, 1) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}))
