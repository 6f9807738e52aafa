"""The comparison of this code with an earlier build made in one sitting by
bench/ab.sh: each path measured on both, in turn, in rounds whose order
alternates; the medians compared. bench/report.py adds it to BENCHMARKS.md
when the run made it; run alone it prints it:

    BENCH_AB_DESCRIPTION=TEXT python3 bench/report_ab.py RESULTS_DIR
"""
import os
import statistics
import sys

from report_baseline import TOLERANCE, event_rate, rate
from report_common import Results

SIDES = ("earlier", "this")

# (path, how to read it from one side's results of one round)
PATHS = [
    ("Register, PostgreSQL, 4 in flight", lambda r: rate(r, "register_pg_c4.json", "ok_throughput")),
    ("Register, SQLite, 16 in flight", lambda r: rate(r, "register_sqlite_c16.json", "ok_throughput")),
    ("ConfirmRegistration, gRPC, PostgreSQL", lambda r: rate(r, "confirm_grpc_pg.json")),
    ("confirm link, HTTP (wrk), PostgreSQL", lambda r: r.wrk_rps("confirm_http_pg.wrk.txt")),
    ("ConfirmRegistration, gRPC, SQLite", lambda r: rate(r, "confirm_grpc_sqlite.json")),
    ("confirm link, HTTP (wrk), SQLite", lambda r: r.wrk_rps("confirm_http_sqlite.wrk.txt")),
    ("GetAccount, PostgreSQL, tonic client", lambda r: rate(r, "get_grpc_pg_tonic.json")),
    ("GetAccount, SQLite, tonic client", lambda r: rate(r, "get_grpc_sqlite_tonic.json")),
    ("CheckPassword, right password", lambda r: rate(r, "check_password_pg.json")),
    ("CheckPassword, locked-out flood", lambda r: rate(r, "locked_flood_pg.json")),
    ("outbox into SMTP", lambda r: rate(r, "mail_drain.json", "messages_per_second")),
    ("events, live watcher, PostgreSQL", lambda r: event_rate(r, "pg", "live_per_s")),
    ("events, replay, PostgreSQL", lambda r: event_rate(r, "pg", "replay_per_s")),
    ("events, live watcher, SQLite", lambda r: event_rate(r, "sqlite", "live_per_s")),
    ("events, replay, SQLite", lambda r: event_rate(r, "sqlite", "replay_per_s")),
]


def rounds(raw, side):
    """The results of each round of one side, in round order."""
    base = raw.path(os.path.join("ab", side))
    if not os.path.isdir(base):
        return []
    names = sorted((d for d in os.listdir(base) if d.startswith("r")), key=lambda d: int(d[1:]))
    return [Results(os.path.join(base, d)) for d in names]


def compare(raw):
    """Rows (path, earlier figures, this code's figures, change of the medians, within tolerance)."""
    sides = {side: rounds(raw, side) for side in SIDES}
    rows = []
    for name, read in PATHS:
        figures = {side: [v for v in (read(r) for r in sides[side]) if v] for side in SIDES}
        if not figures["earlier"] or not figures["this"]:
            continue
        earlier, this = statistics.median(figures["earlier"]), statistics.median(figures["this"])
        rows.append((name, figures["earlier"], figures["this"], this / earlier, this >= TOLERANCE * earlier))
    return rows


def section(raw, description):
    lines, rows = [], compare(raw)
    if not rows:
        return lines, rows
    w = lines.append
    turns = len(rows[0][1])
    w("## Against earlier code")
    w("")
    w("The earlier code is %s. Each path was measured on the earlier service and on this one" % description)
    w("in turn, seconds apart, from %s to %s UTC, in %d rounds whose order alternates (earlier first in odd rounds)," % (
        raw.text("ab/started") or "?", raw.text("ab/finished") or "?", turns))
    w("each side on databases its own service made and seeded alike, both loaded by this code's")
    w("load generator; the medians are compared. This machine's speed drifts by more than 10%")
    w("within an hour, so only figures taken this close together can tell a 10% change.")
    w("")
    w("| path | earlier code /s (each round) | this code /s (each round) | change of the medians | within %d%% |" % round(100 * (1 - TOLERANCE)))
    w("|---|---|---|---|---|")
    for name, earlier, this, change, ok in rows:
        w("| %s | %.0f (%s) | %.0f (%s) | %+.0f%% | %s |" % (
            name, statistics.median(earlier), ", ".join("%.0f" % v for v in earlier),
            statistics.median(this), ", ".join("%.0f" % v for v in this),
            100 * (change - 1), "yes" if ok else "**no**"))
    w("")
    return lines, rows


def target_row(rows):
    slower = [name for name, _, _, _, ok in rows if not ok]
    return ("No path more than %d%% slower than the earlier code (%d paths, medians of alternating turns)" % (
                round(100 * (1 - TOLERANCE)), len(rows)),
            "all within" if not slower else "slower: " + "; ".join(slower), bool(rows) and not slower)


if __name__ == "__main__":
    lines, rows = section(Results(sys.argv[1]), os.environ.get("BENCH_AB_DESCRIPTION", "an earlier build"))
    print("\n".join(lines))
    if rows:
        name, measured, ok = target_row(rows)
        print("| %s | %s | %s |" % (name, measured, "**holds**" if ok else "**does not hold**"))
