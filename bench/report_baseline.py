"""The comparison of one run of bench/run.sh with a run of earlier code on the
same machine, path by path: bench/report.py adds it to BENCHMARKS.md when
BENCH_BASELINE names the earlier run's raw results; run alone it prints it:

    python3 bench/report_baseline.py RESULTS_DIR BASELINE_RESULTS_DIR DESCRIPTION
"""
import sys

from report_common import Results

# A path is slower when its rate falls below this share of the earlier one.
TOLERANCE = 0.9


def rate(raw, name, key="throughput"):
    r = raw.load_optional(name)
    return r.get(key) if r else None


def best_register(raw, backend):
    rates = [rate(raw, "register_%s_c%d.json" % (backend, c), "ok_throughput") for c in (1, 2, 4, 8, 16, 32, 64)]
    rates = [r for r in rates if r]
    return max(rates) if rates else None


def hash_limit(raw):
    samples = [raw.load_optional(n) for n in ("hash_limit.json", "hash_limit_2.json", "hash_limit_3.json")]
    samples = [s["hashes_per_second"] for s in samples if s]
    return sum(samples) / len(samples) if samples else None


def sqlite_loop(raw, name):
    return rate(raw, name, "tps")


def sqlite_select_loop(raw):
    """The GetAccount SELECT loop, sampled before and after the GetAccount run."""
    samples = [rate(raw, n, "tps") for n in ("sqlite_select_loop.json", "sqlite_select_loop_2.json")]
    samples = [s for s in samples if s]
    return sum(samples) / len(samples) if samples else None


def event_rate(raw, backend, key):
    e = raw.load_optional("events_%s.json" % backend)
    return e.get(key) if e else None


# The rows measured with account-loadgen's lean client: a hand-written
# HTTP/2 client in the earlier code, the h2 crate now, so the two figures
# also differ by what the client costs on the shared cores.
LEAN = " (lean client)"

# (path, how to read it, the ceiling it is measured against in BENCHMARKS.md)
PATHS = [
    ("Register, PostgreSQL (best concurrency)", lambda r: best_register(r, "pg"), hash_limit),
    ("Register, SQLite (best concurrency)", lambda r: best_register(r, "sqlite"), hash_limit),
    ("ConfirmRegistration, gRPC, PostgreSQL", lambda r: rate(r, "confirm_grpc_pg.json"),
     lambda r: r.pgbench_tps("pgbench_confirm.txt")),
    ("confirm link, HTTP (wrk), PostgreSQL", lambda r: r.wrk_rps("confirm_http_pg.wrk.txt"),
     lambda r: r.pgbench_tps("pgbench_confirm.txt")),
    ("ConfirmRegistration, gRPC, SQLite", lambda r: rate(r, "confirm_grpc_sqlite.json"),
     lambda r: sqlite_loop(r, "sqlite_loop.json")),
    ("confirm link, HTTP (wrk), SQLite", lambda r: r.wrk_rps("confirm_http_sqlite.wrk.txt"),
     lambda r: sqlite_loop(r, "sqlite_loop.json")),
    ("GetAccount, PostgreSQL" + LEAN, lambda r: rate(r, "get_grpc_pg.json"),
     lambda r: r.pgbench_tps("pgbench_get.txt")),
    ("GetAccount, PostgreSQL, 8 connections" + LEAN, lambda r: rate(r, "get_grpc_pg_c8.json"),
     lambda r: r.pgbench_tps("pgbench_get.txt")),
    ("GetAccount, PostgreSQL, tonic client", lambda r: rate(r, "get_grpc_pg_tonic.json"),
     lambda r: r.pgbench_tps("pgbench_get.txt")),
    ("GetAccount, SQLite" + LEAN, lambda r: rate(r, "get_grpc_sqlite.json"),
     sqlite_select_loop),
    ("GetAccount, SQLite, 8 connections" + LEAN, lambda r: rate(r, "get_grpc_sqlite_c8.json"),
     sqlite_select_loop),
    ("GetAccount, SQLite, tonic client", lambda r: rate(r, "get_grpc_sqlite_tonic.json"),
     sqlite_select_loop),
    ("health check, SQLite service" + LEAN, lambda r: rate(r, "health_sqlite.json"),
     sqlite_select_loop),
    ("CheckPassword, right password", lambda r: rate(r, "check_password_pg.json"), hash_limit),
    ("CheckPassword, locked-out flood", lambda r: rate(r, "locked_flood_pg.json"),
     lambda r: r.pgbench_tps("pgbench_confirm.txt")),
    ("outbox into SMTP", lambda r: rate(r, "mail_drain.json", "messages_per_second"), None),
    ("events, live watcher, PostgreSQL", lambda r: event_rate(r, "pg", "live_per_s"), None),
    ("events, replay, PostgreSQL", lambda r: event_rate(r, "pg", "replay_per_s"), None),
    ("events, live watcher, SQLite", lambda r: event_rate(r, "sqlite", "live_per_s"), None),
    ("events, replay, SQLite", lambda r: event_rate(r, "sqlite", "replay_per_s"), None),
]


def compare(now, before):
    """Rows (path, before, now, change, ceiling change, within tolerance)."""
    rows = []
    for name, read, ceiling in PATHS:
        b, n = read(before), read(now)
        if not b or not n:
            continue
        cb, cn = (ceiling(before), ceiling(now)) if ceiling else (None, None)
        rows.append((name, b, n, n / b, cn / cb if cb and cn else None, n >= TOLERANCE * b))
    return rows


def section(now, before, description):
    lines = []
    w = lines.append
    rows = compare(now, before)
    w("## Against earlier code")
    w("")
    w("The same steps, run on this machine from %s." % description)
    w("Rates only (calls, messages or events per second); \"ceiling\" is how the machine's own")
    w("limit for the path (argon2 hash rate, pgbench, the sqlite3 loop) moved between the two runs,")
    w("so that a path that moved with its ceiling can be told from one that moved alone.")
    w("")
    w("| path | earlier code /s | this code /s | change | its ceiling moved | within %d%% |" % round(100 * (1 - TOLERANCE)))
    w("|---|---|---|---|---|---|")
    for name, b, n, change, ceiling, ok in rows:
        w("| %s | %.0f | %.0f | %+.0f%% | %s | %s |" % (
            name, b, n, 100 * (change - 1), "%+.0f%%" % (100 * (ceiling - 1)) if ceiling else "–",
            ("yes" if ok else "**no**") + (", client changed" if name.endswith(LEAN) else "")))
    w("")
    w("The rows marked%s were loaded by account-loadgen's lean client, which was a hand-written" % LEAN)
    w("HTTP/2 client in the earlier code and is built on the `h2` crate now; on 2 shared cores the")
    w("client's own cost moves the figure. The health check, which runs none of the account code,")
    w("shows that cost alone; the same calls from tonic's client, the same in both runs, show the")
    w("service. The target below judges the rows whose client did not change.")
    w("")
    return lines, rows


def target_row(rows):
    rows = [row for row in rows if not row[0].endswith(LEAN)]
    slower = [name for name, _, _, _, _, ok in rows if not ok]
    return ("No path more than %d%% slower than the earlier code (%d paths with the same client)" % (round(100 * (1 - TOLERANCE)), len(rows)),
            "all within" if not slower else "slower: " + "; ".join(slower), bool(rows) and not slower)


if __name__ == "__main__":
    lines, _ = section(Results(sys.argv[1]), Results(sys.argv[2]), sys.argv[3])
    print("\n".join(lines))
