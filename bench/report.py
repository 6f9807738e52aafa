"""Turns the raw results of bench/run.sh into BENCHMARKS.md (on stdout)."""
import os
import re
import html
import math
import sys

import report_ab
import report_baseline
import report_images
import report_sessions
from report_common import Results, header, holds, ratio_row

results, command = sys.argv[1], sys.argv[2]
raw = Results(results)
load, load_optional, pgbench_tps, text = raw.load, raw.load_optional, raw.pgbench_tps, raw.text


def wrk(name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return None
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))

    def ms(label):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % label, text, re.M)
        if not m:
            return None
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0}



def line_chart(path, title, x_label, y_label, series):
    """Writes an SVG line chart: x on a log2 axis (concurrency), y linear from 0.
    `series` is a list of (label, colour, dashed, [(x, y), ...])."""
    width, height, left, right, top, bottom = 720, 420, 70, 190, 40, 55
    xs = sorted({x for _, _, _, points in series for x, _ in points})
    y_max = max((y for _, _, _, points in series for _, y in points), default=1) * 1.1 or 1
    step = 10 ** math.floor(math.log10(y_max / 5)) if y_max > 0 else 1
    step = next(m * step for m in (1, 2, 5, 10) if y_max / (m * step) <= 6)
    lo, hi = math.log2(min(xs)), math.log2(max(xs))

    def px(x):
        return left + (math.log2(x) - lo) / ((hi - lo) or 1) * (width - left - right)

    def py(y):
        return height - bottom - y / y_max * (height - top - bottom)

    e = []
    e.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (width, height))
    e.append('<rect width="100%" height="100%" fill="white"/>')
    e.append('<text x="%d" y="22" font-size="15">%s</text>' % (left, html.escape(title)))
    y = 0.0
    while y <= y_max:
        e.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (left, width - right, py(y), py(y)))
        e.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (left - 6, py(y) + 4, y))
        y += step
    for x in xs:
        e.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/>' % (px(x), px(x), top, height - bottom))
        e.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>' % (px(x), height - bottom + 18, x))
    e.append('<text x="%d" y="%d" text-anchor="middle">%s</text>' % ((left + width - right) / 2, height - 12, html.escape(x_label)))
    e.append('<text transform="translate(18,%d) rotate(-90)" text-anchor="middle">%s</text>' % ((top + height - bottom) / 2, html.escape(y_label)))
    for i, (label, colour, dashed, points) in enumerate(series):
        d = " ".join("%.1f,%.1f" % (px(x), py(y)) for x, y in sorted(points))
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        e.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>' % (d, colour, dash))
        for x, y in points:
            e.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (px(x), py(y), colour))
        ly = top + 10 + 20 * i
        e.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/>' % (width - right + 15, width - right + 45, ly, ly, colour, dash))
        e.append('<text x="%d" y="%d">%s</text>' % (width - right + 52, ly + 4, html.escape(label)))
    e.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(e) + "\n")


cores = os.cpu_count()
# Written beside BENCHMARKS.md (the report runs from the repository's root).
REGISTER_PLOT = "BENCHMARKS-register-latency.svg"
hl = load("hash_limit.json")
hash_samples = [s for s in (hl, load_optional("hash_limit_2.json"), load_optional("hash_limit_3.json")) if s]
hash_rate = sum(s["hashes_per_second"] for s in hash_samples) / len(hash_samples)
hash_ms = sorted(s["single_hash_ms"] for s in hash_samples)[len(hash_samples) // 2]
out = header(command, cores)
w = out.append
w("## Machine limits")
w("")
w("| measure | figure |")
w("|---|---|")
w("| argon2id hashes/s, m=19456 KiB t=2 p=1, %d threads (mean of %s) | %.1f |" % (
    hl["threads"], ", ".join("%.1f" % s["hashes_per_second"] for s in hash_samples), hash_rate))
w("| one hash alone (median) | %.2f ms |" % hash_ms)
pg_tps = pgbench_tps("pgbench_confirm.txt")
w("| PostgreSQL: the confirm UPDATE, pgbench, 64 clients | %.0f TPS |" % pg_tps)
sl = load("sqlite_loop.json")
w("| SQLite: the confirm UPDATE, plain sqlite3 loop | %.0f TPS |" % sl["tps"])
pg_get_tps = pgbench_tps("pgbench_get.txt")
# The SELECT loop is sampled just before and just after the GetAccount run.
select_samples = [s for s in (load_optional("sqlite_select_loop.json"),
                              load_optional("sqlite_select_loop_2.json")) if s]
sl_get = select_samples and {"tps": sum(s["tps"] for s in select_samples) / len(select_samples)}
if pg_get_tps:
    w("| PostgreSQL: the GetAccount SELECT by id, pgbench, 64 clients | %.0f TPS |" % pg_get_tps)
if sl_get:
    w("| SQLite: the GetAccount SELECT by id, plain sqlite3 loop (mean of %s, just before and after the GetAccount run) | %.0f TPS |" % (
        ", ".join("%.0f" % s["tps"] for s in select_samples), sl_get["tps"]))
w("")
w("## Register")
w("")
w("| backend | concurrency | req/s | OK/s | of hash limit | p50 ms | p99 ms | codes |")
w("|---|---|---|---|---|---|---|---|")
for backend, concurrencies in (("pg", (cores, 4, 16, 64)), ("sqlite", (cores, 16))):
    for c in concurrencies:
        r = load("register_%s_c%d.json" % (backend, c))
        if not r:
            continue
        w("| %s | %d | %.1f | %.1f | %.0f%% | %.1f | %.1f | %s |" % (
            "PostgreSQL" if backend == "pg" else "SQLite", c, r["throughput"], r["ok_throughput"],
            100 * r["ok_throughput"] / hash_rate, r["latency_ms"]["p50"], r["latency_ms"]["p99"],
            " ".join("%s=%d" % kv for kv in r["codes"].items())))
w("")
register_series = []
for backend, label, colour, concurrencies in (("pg", "PostgreSQL", "#1f77b4", (cores, 4, 16, 64)),
                                              ("sqlite", "SQLite", "#ff7f0e", (cores, 16))):
    runs = [(c, load_optional("register_%s_c%d.json" % (backend, c))) for c in sorted(set(concurrencies))]
    runs = [(c, r) for c, r in runs if r]
    if len(runs) > 1:
        register_series.append(("%s p50" % label, colour, False, [(c, r["latency_ms"]["p50"]) for c, r in runs]))
        register_series.append(("%s p99" % label, colour, True, [(c, r["latency_ms"]["p99"]) for c, r in runs]))
if register_series:
    line_chart(REGISTER_PLOT, "Register: latency against calls in flight", "calls in flight",
               "latency (ms)", register_series)
    w("![Register latency against calls in flight](%s)" % REGISTER_PLOT)
    w("")
w("## Confirmation")
w("")
w("| backend | path | req/s | p50 ms | p99 ms | ceiling | of ceiling |")
w("|---|---|---|---|---|---|---|")
grpc_pg, http_pg = load("confirm_grpc_pg.json"), wrk("confirm_http_pg.wrk.txt")
grpc_sl, http_sl = load("confirm_grpc_sqlite.json"), wrk("confirm_http_sqlite.wrk.txt")
w("| PostgreSQL | gRPC ConfirmRegistration, 64 in flight | %.0f | %.2f | %.2f | pgbench %.0f | %.0f%% |" % (
    grpc_pg["throughput"], grpc_pg["latency_ms"]["p50"], grpc_pg["latency_ms"]["p99"], pg_tps, 100 * grpc_pg["throughput"] / pg_tps))
w("| PostgreSQL | HTTP confirm link (wrk, 64 connections) | %.0f | %.2f | %.2f | pgbench %.0f | %.0f%% |" % (
    http_pg["rps"], http_pg["p50"] or 0, http_pg["p99"] or 0, pg_tps, 100 * http_pg["rps"] / pg_tps))
w("| SQLite | gRPC ConfirmRegistration, 64 in flight | %.0f | %.2f | %.2f | sqlite3 loop %.0f | %.0f%% |" % (
    grpc_sl["throughput"], grpc_sl["latency_ms"]["p50"], grpc_sl["latency_ms"]["p99"], sl["tps"], 100 * grpc_sl["throughput"] / sl["tps"]))
w("| SQLite | HTTP confirm link (wrk, 64 connections) | %.0f | %.2f | %.2f | sqlite3 loop %.0f | %.0f%% |" % (
    http_sl["rps"], http_sl["p50"] or 0, http_sl["p99"] or 0, sl["tps"], 100 * http_sl["rps"] / sl["tps"]))
w("")
get_pg, get_sl = load("get_grpc_pg.json"), load("get_grpc_sqlite.json")
get_pg_tonic, get_sl_tonic = load_optional("get_grpc_pg_tonic.json"), load_optional("get_grpc_sqlite_tonic.json")
get_pg_c8, get_sl_c8 = load_optional("get_grpc_pg_c8.json"), load_optional("get_grpc_sqlite_c8.json")
health_sl = load_optional("health_sqlite.json")
get_pg_h2load, get_sl_h2load = load_optional("get_h2load_pg.json"), load_optional("get_h2load_sqlite.json")
health_sl_h2load = load_optional("health_h2load_sqlite.json")
if get_pg or get_sl:
    w("## GetAccount by id")
    w("")
    w("64 calls in flight on one HTTP/2 connection, as one calling service's tonic `Channel` (or")
    w("grpc-go `ClientConn`) sends them; our h2 client also with the calls spread over 8")
    w("connections, where each answer goes out in smaller writes. Three clients make the load:")
    w("")
    w("- **h2** (`account-loadgen --lean`): each call sent straight over the `h2` crate, with a")
    w("  request head and message built before the clock starts and no tower stack; it cycles")
    w("  through every seeded id and checks each answer's grpc-status and that it holds the account")
    w("  asked for.")
    w("- **tonic**: the generated client on a tonic `Channel`, as a Rust caller would use it.")
    w("- **h2load** (nghttp2's HTTP/2 benchmark, in C): the same call as an HTTP/2 POST of one fixed")
    w("  body (`content-type: application/grpc`, `te: trailers`, the framed GetAccountRequest), so it")
    w("  asks for the same account every time. **h2load counts HTTP statuses only, not grpc-status**:")
    w("  a failed gRPC call still answers HTTP 200, so its codes column shows HTTP status classes.")
    w("  Its call was first made 1000 times with account-loadgen, which read every grpc-status:")
    w("  %s." % (", ".join("%s answered %s" % (label, " ".join("%s=%d" % kv for kv in check["codes"].items()))
                          for label, check in (("PostgreSQL GetAccount", load_optional("get_h2load_pg_check.json")),
                                               ("SQLite GetAccount", load_optional("get_h2load_sqlite_check.json")),
                                               ("the health check", load_optional("health_h2load_sqlite_check.json")))
                          if check) or "not checked"))
    w("")
    w("The health check (`grpc.health.v1.Health/Check`) is the same kind of call to the same server")
    w("with no database behind it: the transport's floor.")
    w("")
    w("| backend | call, client | req/s | p50 ms | p99 ms | codes | ceiling | of ceiling |")
    w("|---|---|---|---|---|---|---|---|")
    for label, path, r, ceiling_label, ceiling in (
            ("PostgreSQL", "GetAccount, h2", get_pg, "pgbench", pg_get_tps),
            ("PostgreSQL", "GetAccount, h2, 8 connections", get_pg_c8, "pgbench", pg_get_tps),
            ("PostgreSQL", "GetAccount, tonic", get_pg_tonic, "pgbench", pg_get_tps),
            ("PostgreSQL", "GetAccount, h2load (one id)", get_pg_h2load, "pgbench", pg_get_tps),
            ("SQLite", "GetAccount, h2", get_sl, "sqlite3 loop", sl_get and sl_get["tps"]),
            ("SQLite", "GetAccount, h2, 8 connections", get_sl_c8, "sqlite3 loop", sl_get and sl_get["tps"]),
            ("SQLite", "GetAccount, tonic", get_sl_tonic, "sqlite3 loop", sl_get and sl_get["tps"]),
            ("SQLite", "GetAccount, h2load (one id)", get_sl_h2load, "sqlite3 loop", sl_get and sl_get["tps"]),
            ("SQLite", "health check, h2", health_sl, "sqlite3 loop", sl_get and sl_get["tps"]),
            ("SQLite", "health check, h2load", health_sl_h2load, "sqlite3 loop", sl_get and sl_get["tps"])):
        if not r:
            continue
        w("| %s | %s | %.0f | %.2f | %.2f | %s | %s | %s |" % (
            label, path, r["throughput"], r["latency_ms"]["p50"], r["latency_ms"]["p99"],
            " ".join("%s=%d" % kv for kv in r["codes"].items()),
            "%s %.0f" % (ceiling_label, ceiling) if ceiling else "–",
            "%.0f%%" % (100 * r["ok_throughput"] / ceiling) if ceiling else "–"))
    w("")
    per_call = []
    for call, name in (("get", "GetAccount"), ("health", "health check")):
        for client, suffix in (("h2", ""), ("h2load", "_h2load")):
            shares = load_optional("cpu_share_%s%s_sqlite.json" % (call, suffix))
            run = load_optional("shares_run_%s%s_sqlite.json" % (call, suffix))
            if shares and run and run["throughput"]:
                per_call.append((name, client, run["throughput"], shares.get("service", 0), shares.get("load generator", 0)))
    if per_call:
        w("CPU time per call on SQLite, from the shares of the machine's %d cores (from /proc, 5 s)" % cores)
        w("and the rate of the same run:")
        w("")
        w("| call | client | req/s | service | load generator | service µs per call | load generator µs per call |")
        w("|---|---|---|---|---|---|---|")
        for name, client, rate, svc, lg in per_call:
            w("| %s | %s | %.0f | %.1f%% | %.1f%% | %.0f | %.0f |" % (
                name, client, rate, svc, lg, svc / 100 * cores * 1e6 / rate, lg / 100 * cores * 1e6 / rate))
        w("")
signin, locked, locked_hashes = load("check_password_pg.json"), load("locked_flood_pg.json"), load("locked_flood_hashes.json")
if signin and locked:
    w("## Sign-in")
    w("")
    w("CheckPassword on PostgreSQL: the right password for one verified account, 4 in flight (one argon2id check per call); then 10000 attempts, 64 in flight, on an address locked out by five wrong passwords.")
    w("")
    w("| scenario | req/s | p50 ms | p99 ms | codes | password hashes computed |")
    w("|---|---|---|---|---|---|")
    w("| CheckPassword, right password | %.1f | %.2f | %.2f | %s | one per call |" % (
        signin["throughput"], signin["latency_ms"]["p50"], signin["latency_ms"]["p99"],
        " ".join("%s=%d" % kv for kv in signin["codes"].items())))
    hashed = (locked_hashes["after"] - locked_hashes["before"]) if locked_hashes else None
    w("| locked-out flood | %.0f | %.2f | %.2f | %s | %s |" % (
        locked["throughput"], locked["latency_ms"]["p50"], locked["latency_ms"]["p99"],
        " ".join("%s=%d" % kv for kv in locked["codes"].items()),
        "%d (the five that locked it)" % hashed if hashed is not None else "–"))
    w("")
session_lines, session_rows = report_sessions.section(raw, cores)
out.extend(session_lines)
image_lines, image_rows = report_images.section(raw, cores)
out.extend(image_lines)
events_pg, events_sl = load_optional("events_pg.json"), load_optional("events_sqlite.json")
if events_pg or events_sl:
    w("## Account events")
    w("")
    w("`account-loadgen events`: first lone UpdateProfile calls on an idle service, each timed from the moment the call was sent until its event reached a WatchAccountEvents stream that was already open (so the figure includes the change itself); then a burst of changes from many callers while that watcher follows (its rate is the burst divided by the time until the last event arrived), and new watchers replaying the burst from the cursor before it, one after another (a replay takes milliseconds, so the median of %d is shown)." % len((events_pg or events_sl).get("replay_samples_per_s", [0])))
    w("")
    w("| backend | lone change → watcher p50 / p99 / max ms | burst | changes/s made | live watcher events/s (lag after the last change) | replay events/s (range) |")
    w("|---|---|---|---|---|---|")
    for label, e in (("PostgreSQL", events_pg), ("SQLite", events_sl)):
        if not e:
            continue
        samples = e.get("replay_samples_per_s") or [e["replay_per_s"]]
        w("| %s | %.2f / %.2f / %.2f | %d | %.0f | %.0f (%.1f ms) | %.0f (%.0f–%.0f) |" % (
            label, e["latency_ms"]["p50"], e["latency_ms"]["p99"], e["latency_ms"]["max"], e["burst"],
            e["produced_per_s"], e["live_per_s"], e["live_lag_ms"], e["replay_per_s"], min(samples), max(samples)))
    w("")
shared = {(store, call): load("limits_%s_%s.json" % (store, call))
          for store in ("memory", "postgres") for call in ("register", "resend")}
if all(shared.values()):
    w("## Shared rate limits")
    w("")
    w("Register (16 in flight) and ResendConfirmation for unique unknown addresses (64 in flight) on PostgreSQL, with every limit on but set high enough that nothing is refused, so the figures show what taking from the buckets costs: `RATE_LIMIT_STORE=memory` (each instance its own buckets) against `postgres` (one row per key, one statement per bucket, shared by every instance).")
    w("")
    w("| call | store | req/s | p50 ms | p99 ms | codes | req/s against memory |")
    w("|---|---|---|---|---|---|---|")
    for call, label in (("register", "Register"), ("resend", "ResendConfirmation")):
        base = shared[("memory", call)]["throughput"]
        for store in ("memory", "postgres"):
            r = shared[(store, call)]
            w("| %s | %s | %.1f | %.2f | %.2f | %s | %.0f%% |" % (
                label, store, r["throughput"], r["latency_ms"]["p50"], r["latency_ms"]["p99"],
                " ".join("%s=%d" % kv for kv in r["codes"].items()), 100 * r["throughput"] / base))
    w("")
mem, burst = load("memory.json"), load("burst_500.json")
w("## Memory")
w("")
w("| measure | figure |")
w("|---|---|")
w("| resident, idle after start | %.1f MiB |" % (mem["idle_kib"] / 1024))
w("| peak resident (VmHWM) through a burst of 500 concurrent Register calls | %.1f MiB |" % (mem["peak_kib"] / 1024))
w("| resident just after the burst | %.1f MiB |" % (mem["after_burst_kib"] / 1024))
w("| answers to the burst | %s |" % " ".join("%s=%d" % kv for kv in burst["codes"].items()))
w("")
flood = load("resend_flood.json")
if flood:
    w("ResendConfirmation flooded on PostgreSQL with the per-address limiter on: first %d calls carrying invalid 60 KiB addresses, then %d calls with distinct valid addresses." % (flood["invalid"]["requests"], flood["valid"]["requests"]))
    w("")
    w("| measure | figure |")
    w("|---|---|")
    w("| resident before the flood | %.1f MiB |" % (flood["rss_before_kib"] / 1024))
    w("| after the invalid addresses | %.1f MiB |" % (flood["rss_after_invalid_kib"] / 1024))
    w("| after the valid addresses | %.1f MiB |" % (flood["rss_after_kib"] / 1024))
    w("| growth | %.1f MiB |" % flood["grown_mib"])
    w("| answers | invalid: %s; valid: %s |" % (
        " ".join("%s=%d" % kv for kv in flood["invalid"]["codes"].items()),
        " ".join("%s=%d" % kv for kv in flood["valid"]["codes"].items())))
    w("")
timings = [(b, load("resend_timing_%s.json" % b)) for b in ("pg", "sqlite")]
timings = [(b, t) for b, t in timings if t]
if timings:
    w("## ResendConfirmation timing")
    w("")
    w("Median latency of one call for each kind of address, %d addresses of each kind asked once, interleaved (`account-loadgen resend-timing`). The answer must not reveal which kind an address is." % timings[0][1]["accounts"])
    w("")
    w("| backend | unknown | verified | unverified | largest / smallest |")
    w("|---|---|---|---|---|")
    for b, t in timings:
        m = t["median_ms"]
        w("| %s | %.3f ms | %.3f ms | %.3f ms | +%.1f%% |" % ({"pg": "PostgreSQL", "sqlite": "SQLite"}[b], m["unknown"], m["verified"], m["unverified"], t["spread_percent"]))
    w("")
mail = load("mail_drain.json")
w("## Mail")
w("")
w("| measure | figure |")
w("|---|---|")
w("| outbox drained into a local SMTP server (%d messages) | %.0f messages/s |" % (mail["messages"], mail["messages_per_second"]))
w("")
idle, idle_mail = load_optional("idle_xact.json"), load_optional("idle_mail.json")
if idle:
    w("## Idle")
    w("")
    w("The service on PostgreSQL with default settings (RATE_LIMITS on, EMAIL_POLL_INTERVAL, METRICS_REFRESH),")
    w("left alone; transactions on its database counted over %.0f s from %.0f s after start, and again from %.0f s after start"
      % (idle["window_s"], idle["settle_s"], idle.get("later_s", idle["settle_s"])))
    w("(`xact_commit + xact_rollback` in pg_stat_database, read from another database; autovacuum paused).")
    w("The first window still holds start-up's one-time work: each pooled connection prepares a statement")
    w("the first time it runs it, and PostgreSQL counts each preparation as a transaction of its own.")
    w("The later window is the idle instance: a look at the outbox every EMAIL_POLL_INTERVAL (30 s) and")
    w("a gauge refresh every other look.")
    w("Then one Register, and the time until its mail reached a local SMTP server.")
    w("")
    w("| measure | figure |")
    w("|---|---|")
    if "first_transactions" in idle:
        w("| transactions in %.0f s, from %.0f s after start | %d |" % (idle["window_s"], idle["settle_s"], idle["first_transactions"]))
    w("| transactions in %.0f s, from %.0f s after start | %d |" % (idle["window_s"], idle.get("later_s", idle["settle_s"]), idle["transactions"]))
    w("| per minute | %.1f |" % idle["per_minute"])
    w("| per 10 s | %.2f |" % idle["per_10s"])
    if idle_mail:
        w("| Register answered | %.1f ms |" % idle_mail["register_ms"])
        w("| mail at the SMTP server, after the Register answer | %.1f ms |" % idle_mail["latency_ms"])
        w("| mail at the SMTP server, after the Register call was sent | %.1f ms |" % idle_mail["latency_from_call_ms"])
    else:
        w("| mail at the SMTP server | did not arrive |")
    w("")
ab_lines, ab_rows = report_ab.section(raw, os.environ.get("BENCH_AB_DESCRIPTION", "an earlier build"))
out.extend(ab_lines)
baseline = os.environ.get("BENCH_BASELINE")
baseline_rows = []
if baseline:
    baseline_lines, baseline_rows = report_baseline.section(
        raw, Results(baseline), os.environ.get("BENCH_BASELINE_DESCRIPTION", "earlier code"))
    out.extend(baseline_lines)
w("## Targets")
w("")
reg_cores = load("register_pg_c%d.json" % cores)
best_reg = max(load("register_pg_c%d.json" % c)["ok_throughput"] for c in (cores, 4, 16, 64))
burst_codes = set(burst["codes"]) - {"OK", "RESOURCE_EXHAUSTED"}
rows = [
    ("Register ≥ 85% of the hash limit (best concurrency)", "%.0f%%" % (100 * best_reg / hash_rate), best_reg >= 0.85 * hash_rate),
    ("Register p99 ≤ 4 × one hash at concurrency = cores", "%.1f ms vs %.1f ms" % (reg_cores["latency_ms"]["p99"], 4 * hash_ms), reg_cores["latency_ms"]["p99"] <= 4 * hash_ms),
    ("Confirm over gRPC ≥ 50% of pgbench", "%.0f%% (%.0f vs %.0f/s)" % (100 * grpc_pg["throughput"] / pg_tps, grpc_pg["throughput"], pg_tps), grpc_pg["throughput"] >= 0.5 * pg_tps),
    ("Confirm over HTTP ≥ 50% of pgbench", "%.0f%% (%.0f vs %.0f/s)" % (100 * http_pg["rps"] / pg_tps, http_pg["rps"], pg_tps), http_pg["rps"] >= 0.5 * pg_tps),
    ("Idle resident ≤ 30 MiB", "%.1f MiB" % (mem["idle_kib"] / 1024), mem["idle_kib"] <= 30 * 1024),
    ("Peak resident ≤ 150 MiB in the 500 burst", "%.1f MiB" % (mem["peak_kib"] / 1024), mem["peak_kib"] <= 150 * 1024),
    ("Burst answered only OK or RESOURCE_EXHAUSTED", " ".join(sorted(burst["codes"])), not burst_codes),
    ("Outbox drains ≥ 500 messages/s", "%.0f/s" % mail["messages_per_second"], mail["messages_per_second"] >= 500),
]


rows.append(ratio_row("GetAccount by id over gRPC ≥ 50% of pgbench's SELECT (PostgreSQL)",
                      get_pg and get_pg["ok_throughput"], pg_get_tps, 0.5))
rows.append(ratio_row("SQLite: confirmation over gRPC ≥ 50% of the sqlite3 UPDATE loop",
                      grpc_sl["throughput"], sl["tps"], 0.5))
rows.append(ratio_row("SQLite: confirmation over HTTP ≥ 50% of the sqlite3 UPDATE loop",
                      http_sl["rps"], sl["tps"], 0.5))
rows.append(ratio_row("SQLite: GetAccount by id ≥ 50% of the sqlite3 SELECT loop",
                      get_sl and get_sl["ok_throughput"], sl_get and sl_get["tps"], 0.5))
# p99 of confirmation at 64 in flight, as recorded by the full run of 2026-11-28
# on this machine, before concurrent confirmations were batched.
P99_BEFORE_BATCHING = {
    ("PostgreSQL", "gRPC"): 47.04, ("PostgreSQL", "HTTP"): 36.09,
    ("SQLite", "gRPC"): 466.18, ("SQLite", "HTTP"): 591.31,
}
for (backend, path), now in ((("PostgreSQL", "gRPC"), grpc_pg["latency_ms"]["p99"]),
                             (("PostgreSQL", "HTTP"), http_pg["p99"]),
                             (("SQLite", "gRPC"), grpc_sl["latency_ms"]["p99"]),
                             (("SQLite", "HTTP"), http_sl["p99"])):
    before = P99_BEFORE_BATCHING[(backend, path)]
    rows.append(("%s: confirmation over %s, p99 at 64 in flight no worse than before batching (%.2f ms, run of 2026-11-28)" % (
        backend, path, before), "%.2f ms" % now if now is not None else "not measured",
        now is not None and now <= before))
if idle:
    rows.append(("Idle: ≤ 1 database transaction per 10 s on average", "%.2f per 10 s (%d in %.0f s)" % (
        idle["per_10s"], idle["transactions"], idle["window_s"]), idle["per_10s"] <= 1))
    rows.append(("Idle: a lone mail delivered ≤ 100 ms after the Register answer",
                 "%.1f ms" % idle_mail["latency_ms"] if idle_mail else "did not arrive",
                 bool(idle_mail) and idle_mail["latency_ms"] <= 100))
if flood:
    flood_codes = (set(flood["invalid"]["codes"]) | set(flood["valid"]["codes"])) - {"OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"}
    rows.append(("Address flood grows resident memory < 40 MiB", "%.1f MiB" % flood["grown_mib"], flood["grown_mib"] < 40))
    rows.append(("Address flood answered only INVALID_ARGUMENT, OK or RESOURCE_EXHAUSTED", " ".join(sorted(set(flood["invalid"]["codes"]) | set(flood["valid"]["codes"]))), not flood_codes))
if signin:
    rows.append(("CheckPassword ≥ 90% of the hash limit", "%.0f%% (%.1f vs %.1f/s)" % (
        100 * signin["ok_throughput"] / hash_rate, signin["ok_throughput"], hash_rate),
        signin["ok_throughput"] >= 0.9 * hash_rate))
if locked:
    rows.append(ratio_row("Locked-out flood ≥ 50% of gRPC confirmation", locked["throughput"], grpc_pg["throughput"], 0.5))
    hashed = (locked_hashes["after"] - locked_hashes["before"]) if locked_hashes else None
    rows.append(("Locked-out flood of %d attempts hashes nothing" % locked["requests"],
                 "%s hashes beyond the 5 that locked it" % ("%d" % (hashed - 5) if hashed is not None else "?"),
                 hashed is not None and hashed - 5 == 0))
for label, e in (("PostgreSQL", load_optional("events_pg.json")), ("SQLite", load_optional("events_sqlite.json"))):
    if e:
        rows.append(("Events (%s): a watcher reads ≥ 2000 events/s" % label,
                     "replay %.0f/s; live %.0f/s, as fast as changes were made (%.0f/s)" % (
                         e["replay_per_s"], e["live_per_s"], e["produced_per_s"]),
                     e["replay_per_s"] >= 2000 and e["live_per_s"] >= 0.95 * min(e["produced_per_s"], 2000)))
        rows.append(("Events (%s): change → idle watcher p99 ≤ 100 ms" % label,
                     "%.2f ms" % e["latency_ms"]["p99"], e["latency_ms"]["p99"] <= 100))
for b, t in timings:
    rows.append(("ResendConfirmation medians within 10%% of each other (%s)" % b, "+%.1f%%" % t["spread_percent"], t["spread_percent"] <= 10))
rows.extend(session_rows)
rows.extend(image_rows)
if ab_rows:
    rows.append(report_ab.target_row(ab_rows))
if baseline_rows:
    rows.append(report_baseline.target_row(baseline_rows))
w("| target | measured | |")
w("|---|---|---|")
for name, measured, ok in rows:
    w("| %s | %s | %s |" % (name, measured, holds(ok)))


failing = [name for name, _, ok in rows if not ok]
if failing:
    w("")
    w("## Where a target is not met")
    w("")
    shares, service_profile = load("cpu_share_confirm.json") or {}, text("profile_confirm_service.txt")
    if any("Confirm" in f for f in failing):
        w("**Confirmation vs pgbench.** pgbench is a lean C client that sends one prepared statement;")
        w("here the same %d cores also carry the gRPC load generator and, in the service, HTTP/2," % cores)
        w("protobuf, JWT verification and sqlx around that same statement. Shares of the whole machine's")
        w("CPU during gRPC confirmation (from /proc, 5 s):")
        w("")
        w("| process | share of all cores |")
        w("|---|---|")
        for name, share in shares.items():
            w("| %s | %.1f%% |" % (name, share))
        w("")
        kernel = sum(float(line.split("%")[0]) for line in service_profile.splitlines() if "[kernel" in line and "%" in line)
        if service_profile:
            w("Inside the service (perf, cpu-clock, top functions): %.0f%% of these samples are in the kernel," % kernel)
            w("mostly task switches and wake-ups (`finish_task_switch`, `_raw_spin_unlock_irqrestore`) and")
            w("TCP: with three busy processes on two cores, each small request costs several wake-ups.")
            w("")
            w("```")
            w(service_profile)
            w("```")
            w("")
        w("What would close it: generate the load from another machine, as clients in a deployment do")
        w("(the load generator's share goes back to the service and PostgreSQL); fewer wake-ups per")
        w("request, e.g. batching concurrent confirmations into one `UPDATE … WHERE id = ANY($1)` round")
        w("trip so that one database reply wakes many callers. Tried here without gain: 1 instead of 2")
        w("async worker threads (fewer cross-thread wake-ups, but one core for all the async work: about")
        w("10% slower) and 32 or 64 instead of 16 database connections (a few percent slower).")
        w("")
    if any("Register" in f and "hash limit" in f for f in failing):
        w("**Register vs the hash limit.** The hash limit is measured with nothing else running; during")
        w("the Register runs the same cores also run the load generator, PostgreSQL's commits and the")
        w("service's request handling, so the hashing threads get less than all of the CPU. What would")
        w("close it: a load generator on another machine; fewer context switches between the hashing")
        w("threads and the async workers (e.g. pinning the hashing threads).")
        w("")
    if any("CheckPassword" in f for f in failing):
        w("**CheckPassword vs the hash limit.** As for Register: each check is one argon2id hash on")
        w("the service's hashing threads, and the limit is measured with nothing else running, while")
        w("during the run the same cores also carry the load generator, PostgreSQL (a statement that")
        w("reserves the check and reads the account, and one that gives the check back) and the")
        w("service's request handling. What would close it: the same as for Register.")
        w("")
    if any("sqlite3 SELECT" in f for f in failing):
        w("**SQLite look-ups vs a plain sqlite3 loop.** The loop runs the SELECT in its own process,")
        w("one call into SQLite's C library each, with nothing crossing a socket. Each GetAccount here")
        w("is a gRPC call from a load generator sharing the same %d cores." % cores)
        if health_sl and sl_get:
            w("The health check, the same kind of call to the same server with no database behind it,")
            w("runs at %.0f%% of the loop, so the transport alone leaves room;" % (100 * health_sl["ok_throughput"] / sl_get["tps"]))
            w("the rest is the look-up's own work in the service (the CPU per call above).")
        w("Done already: a look-up by id is read on the calling thread by a read-only connection to")
        w("the same file (no hand-off to a connection thread, no copy of each value); a lone look-up is")
        w("one `SELECT … WHERE id = ?`, concurrent ones share one statement that joins the id list to")
        w("the table; pages are read through `mmap`; the load comes from the `h2` crate without tonic's")
        w("stack, and h2load (in C) beside it shows how much a leaner client leaves to the service.")
        w("What is left per call is the gRPC transport (the health check's cost), the access check, the")
        w("admission permit, metrics and the row's conversion to its message. What would close it:")
        w("clients on other machines, as in a deployment, so that the load generator's share goes back")
        w("to the service.")
        w("")
        get_profile = text("profile_get_sqlite_service.txt")
        if get_profile:
            kernel = sum(float(line.split("%")[0]) for line in get_profile.splitlines() if "[kernel" in line and "%" in line)
            w("Inside the service (perf, cpu-clock, top functions; %.0f%% of these samples are in the kernel):" % kernel)
            w("")
            w("```")
            w(get_profile)
            w("```")
            w("")
    if any("ResendConfirmation" in f for f in failing):
        w("**ResendConfirmation timing.** Every kind of address takes the same path: one lookup, one")
        w("token, one rendered mail, and one transaction with the same statements (the cooldown upsert,")
        w("the outbox insert, the removal of that row unless the address belongs to an unverified")
        w("account, and the NOTIFY). What is left is the difference between removing a row and checking")
        w("the kept row's account reference at commit, and the noise of a shared two-core machine.")
        w("")
    if any("Outbox" in f for f in failing):
        w("**Outbox drain.** Each batch of up to 64 claimed messages is sent concurrently over a pool of")
        w("32 SMTP connections, then recorded in one write; the rate is bound by SMTP round trips per")
        w("message. What would close it: pipelining (SMTP PIPELINING) and overlapping the next claim")
        w("with the current batch's sends.")
        w("")
    out.extend(report_sessions.explain(raw, failing))
    out.extend(report_images.explain(raw, failing))
print("\n".join(out))
