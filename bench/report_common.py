"""What bench/report.py and bench/report_sessions.py share: reading the raw
results of bench/run.sh, the report's header, and the targets' rows."""
import datetime
import json
import os
import platform
import re


class Results:
    """The directory of one run's raw results."""

    def __init__(self, directory):
        self.directory = directory

    def path(self, name):
        return os.path.join(self.directory, name)

    def load(self, name):
        path = self.path(name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    def load_optional(self, name):
        """A JSON result that a failed step may have left empty."""
        try:
            return self.load(name)
        except (ValueError, OSError):
            return None

    def number(self, name, pattern):
        """The figure `pattern`'s group captures in result file `name`; None without it."""
        path = self.path(name)
        if not os.path.exists(path):
            return None
        m = re.search(pattern, open(path).read())
        return float(m.group(1)) if m else None

    def pgbench_tps(self, name):
        return self.number(name, r"tps = ([\d.]+)")

    def wrk_rps(self, name):
        return self.number(name, r"Requests/sec:\s+([\d.]+)")

    def text(self, name):
        path = self.path(name)
        return open(path).read().strip() if os.path.exists(path) else ""


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            return "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    return "unknown"


def header(command, cores):
    """The report's title and the run it comes from."""
    return [
        "# Benchmarks",
        "",
        "Measured in one run on one machine; every ratio compares figures from that run.",
        "",
        "- Date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- Machine: %d cores (%s), %s memory, %s %s" % (cores, cpu_model(), mem_total(), platform.system(), platform.release()),
        "- Reproduce: `%s`" % command,
        "- The load generators (`account-loadgen`, wrk, h2load), PostgreSQL and the service share these %d cores, so every figure" % cores,
        "  includes the cost of generating the load.",
        "",
    ]


def holds(ok):
    return "**holds**" if ok else "**does not hold**"


def ratio_row(name, measured, ceiling, at_least):
    if measured is None or not ceiling:
        return (name, "not measured", False)
    return (name, "%.0f%% (%.0f vs %.0f/s)" % (100 * measured / ceiling, measured, ceiling), measured >= at_least * ceiling)


def codes(result):
    return " ".join("%s=%d" % kv for kv in result["codes"].items())


def standalone(section, explain):
    """The report of one group of steps run alone (BENCH_ONLY): its section,
    its targets, and why the missed ones miss. Arguments: the results
    directory and the command that produced them."""
    import sys

    raw = Results(sys.argv[1])
    cores = os.cpu_count()
    out = header(sys.argv[2], cores)
    lines, rows = section(raw, cores)
    out.extend(lines)
    out += ["## Targets", "", "| target | measured | |", "|---|---|---|"]
    out += ["| %s | %s | %s |" % (name, measured, holds(ok)) for name, measured, ok in rows]
    failing = [name for name, _, ok in rows if not ok]
    if failing:
        out += ["", "## Where a target is not met", ""] + explain(raw, failing)
    return "\n".join(out)
