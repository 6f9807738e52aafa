"""The session RPCs' part of BENCHMARKS.md, from the results of
bench/sessions.sh: bench/report.py places it in the whole report; run alone
(after `BENCH_ONLY=sessions bench/run.sh`) it prints a report of its own:

    python3 bench/report_sessions.py RESULTS_DIR COMMAND
"""

from report_common import codes, ratio_row, standalone

# Growth of resident memory (KiB) that still counts as none: what two
# readings of an unchanged idle process differ by, allocator noise.
NOISE_KIB = 2048

BACKENDS = (("pg", "PostgreSQL"), ("sqlite", "SQLite"))


def mib(kib):
    return "%.1f MiB" % (kib / 1024)


def signed_mib(kib):
    return "%+.1f MiB" % (kib / 1024)


def memory_growth(m):
    """What the sessions cost the process: its anonymous resident memory
    once they are stored, against before; and after a burst of calls over
    them, against the same burst over one session. Anonymous memory is what
    the process holds itself: on SQLite the database file is read through
    mmap, and the pages read, which the kernel may drop at any time, count
    as resident file pages (in VmRSS once per connection's mapping)."""
    seeded = m["idle_after_seed"]["anon_kib"] - m["idle_before"]["anon_kib"]
    burst = m["after_burst_all"]["anon_kib"] - m["after_burst_one"]["anon_kib"]
    return seeded, burst


def section(raw, cores):
    """The lines of the Sessions section, and its rows of the targets table."""
    lines, rows = [], []
    w = lines.append
    # Hash-limit samples 0..n around n SignIn runs at 4 in flight: run r is
    # judged against the mean of samples r-1 and r, beside it in time.
    samples, rounds = [raw.load_optional("hash_limit_signin_0.json")], []
    while samples[-1]:
        r = len(samples)
        run, after = raw.load_optional("sign_in_pg_c4_r%d.json" % r), raw.load_optional("hash_limit_signin_%d.json" % r)
        if not (run and after):
            break
        around = (samples[-1]["hashes_per_second"] + after["hashes_per_second"]) / 2
        rounds.append((r, run, around))
        samples.append(after)
    samples = [s for s in samples if s]
    hash_rate = samples and sum(s["hashes_per_second"] for s in samples) / len(samples)
    busy = raw.load_optional("sign_in_pg_c16.json")
    sign_in = rounds or busy
    verify, verify_h2load = raw.load_optional("verify_token_pg.json"), raw.load_optional("verify_h2load_pg.json")
    check = raw.load_optional("verify_h2load_pg_check.json")
    refresh = raw.load_optional("refresh_pg.json")
    update_tps = raw.pgbench_tps("pgbench_session_update.txt")
    select_tps = raw.pgbench_tps("pgbench_session_select.txt")
    memory = [(label, raw.load_optional("memory_sessions_%s.json" % b)) for b, label in BACKENDS]
    memory = [(label, m) for label, m in memory if m]
    offline = raw.load_optional("jwks_verify.json")
    if not (sign_in or verify or refresh or memory or offline):
        return lines, rows
    seeded = memory[0][1] if memory else {"sessions": 0, "accounts": 0}

    w("## Sessions")
    w("")
    w("On PostgreSQL, over %d verified accounts whose password hash was seeded (one argon2id hash computed" % seeded["accounts"])
    w("once). After the SignIn runs, %d live sessions were seeded beside them, %d per account, each with a" % (
        seeded["sessions"], seeded["sessions"] // max(seeded["accounts"], 1)))
    w("current refresh token; VerifyAccessToken, RefreshSession and the pgbench ceilings ran over that table.")
    w("Calls other than SignIn go out over the `h2` crate (`account-loadgen`, as for GetAccount), 64 in")
    w("flight on one HTTP/2 connection.")
    w("")
    w("| measure | figure |")
    w("|---|---|")
    if hash_rate:
        w("| argon2id hashes/s, %d threads, sampled before, between and after the SignIn runs at 4 in flight (mean of %s) | %.1f |" % (
            samples[0]["threads"], ", ".join("%.1f" % s["hashes_per_second"] for s in samples), hash_rate))
    if update_tps:
        w("| PostgreSQL: a session's single-row UPDATE by id (`bench/session_update.sql`), pgbench, 64 clients | %.0f TPS |" % update_tps)
    if select_tps:
        w("| PostgreSQL: a session's single-row SELECT by id, the one VerifyAccessToken runs (`bench/session_select.sql`), pgbench, 64 clients | %.0f TPS |" % select_tps)
    w("")
    if sign_in:
        w("**SignIn**: the right password, cycling through the accounts; each call is CheckPassword's")
        w("check (one argon2id verification, its reservation and the account's read one statement) and one")
        w("transaction that gives the check back and starts the session.")
        w("")
        w("Each run at 4 in flight lies between two samples of the hash limit and is set against their")
        w("mean; the target sets the runs' total against the total of those means.")
        w("")
        w("| run | in flight | req/s | OK/s | hash limit beside it | of hash limit | p50 ms | p99 ms | codes |")
        w("|---|---|---|---|---|---|---|---|---|")
        for r, run, around in rounds:
            w("| %d | 4 | %.1f | %.1f | %.1f | %.0f%% | %.1f | %.1f | %s |" % (
                r, run["throughput"], run["ok_throughput"], around, 100 * run["ok_throughput"] / around,
                run["latency_ms"]["p50"], run["latency_ms"]["p99"], codes(run)))
        if busy:
            w("| after | 16 | %.1f | %.1f | %s | %s | %.1f | %.1f | %s |" % (
                busy["throughput"], busy["ok_throughput"],
                "%.1f (mean of all)" % hash_rate if hash_rate else "–",
                "%.0f%%" % (100 * busy["ok_throughput"] / hash_rate) if hash_rate else "–",
                busy["latency_ms"]["p50"], busy["latency_ms"]["p99"], codes(busy)))
        w("")
        rows.append(ratio_row(
            "SignIn ≥ 90%% of the hash limit (4 in flight; %d runs, each against the hash-limit samples beside it)" % len(rounds),
            sum(run["ok_throughput"] for _, run, _ in rounds) if rounds else None,
            sum(around for _, _, around in rounds), 0.9))
    if verify or refresh:
        w("**VerifyAccessToken** checks the token's signature, issuer, audience and expiry, then reads")
        w("its session by id (one SELECT), the same token every call, so that h2load (nghttp2, in C) can")
        w("send it as one fixed body beside account-loadgen, which checks that each answer names the")
        w("token's session. h2load reads HTTP statuses only; its call was first made 1000 times with")
        w("account-loadgen: %s." % (codes(check) if check else "not checked"))
        w("")
        w("**RefreshSession**: 64 sessions, one per call in flight, each refreshed in a chain: every")
        w("call presents the refresh token its session's previous answer gave. A refresh of a current")
        w("token changes four rows (lock the token, mark it rotated, insert its successor, touch the")
        w("session) where pgbench's UPDATE changes one; the refreshes that arrive while one statement is")
        w("in flight are sent together as the next one (on PostgreSQL one statement for the batch, its")
        w("tokens locked in one order), and the service signs a new access token for each.")
        w("")
        w("| call, client | req/s | p50 ms | p99 ms | codes | ceiling | of ceiling |")
        w("|---|---|---|---|---|---|---|")
        for label, r, ceiling in (("VerifyAccessToken, h2 (account-loadgen)", verify, ("SELECT", select_tps)),
                                  ("VerifyAccessToken, h2load (one token)", verify_h2load, ("SELECT", select_tps)),
                                  ("RefreshSession, h2, chained", refresh, ("UPDATE", update_tps))):
            if not r:
                continue
            w("| %s | %.0f | %.2f | %.2f | %s | %s | %s |" % (
                label, r["throughput"], r["latency_ms"]["p50"], r["latency_ms"]["p99"], codes(r),
                "pgbench %s %.0f" % (ceiling[0], ceiling[1]) if ceiling[1] else "–",
                "%.0f%%" % (100 * r["ok_throughput"] / ceiling[1]) if ceiling[1] else "–"))
        w("")
        name, measured, ok = ratio_row("VerifyAccessToken ≥ 50% of pgbench's single-row SELECT (PostgreSQL, account-loadgen)",
                                       verify and verify["ok_throughput"], select_tps, 0.5)
        if verify_h2load and select_tps:
            measured += "; h2load %.0f%% (%.0f/s)" % (100 * verify_h2load["ok_throughput"] / select_tps, verify_h2load["ok_throughput"])
        rows.append((name, measured, ok))
        rows.append(ratio_row("RefreshSession at 64 in flight ≥ 50% of pgbench's single-row UPDATE (PostgreSQL)",
                              refresh and refresh["ok_throughput"], update_tps, 0.5))
    shares = raw.load_optional("cpu_share_refresh_pg.json")
    profile = raw.text("profile_refresh_pg_service.txt")
    if shares:
        w("Where the CPU went during a second chained RefreshSession run (shares of all %d cores, from" % cores)
        w("/proc over 5 s): %s." % ", ".join("%s %.1f%%" % (name, share) for name, share in shares.items()))
        if profile:
            w("Inside the service (perf, cpu-clock, top functions):")
            w("")
            w("```")
            w("\n".join(profile.splitlines()[:12]))
            w("```")
        w("")
    if offline:
        w("**Offline verification** (`account-loadgen jwks-verify`, one thread, nothing else running): a")
        w("calling service's check of an access token against the JWKS document the sidecar served")
        w("(`/.well-known/jwks.json`), with the `jsonwebtoken` crate's JWK support: `DecodingKey::from_jwk`")
        w("once per key, then per token the header's `kid`, the EdDSA signature, issuer, audience and expiry.")
        w("")
        w("| measure | figure |")
        w("|---|---|")
        w("| tokens verified per second on one core (%d key(s) in the JWKS, %.0f s) | %.0f |" % (
            offline["keys"], offline["duration_s"], offline["per_second"]))
        w("| time per token | %.1f µs |" % offline["microseconds"])
        w("")
    if memory:
        w("**Memory**: the service's resident memory (from /proc) idle, then idle again after %d sessions" % seeded["sessions"])
        w("were written into its database, then after %d VerifyAccessToken calls and %d ListSessions calls" % (
            seeded["verified"], seeded["listed"]))
        w("for one session and one account, then after the same calls over %d distinct sessions' tokens and" % seeded["verified"])
        w("every account (each listing its %d sessions, so every session is read)." % (
            seeded["sessions"] // max(seeded["accounts"], 1)))
        w("Anonymous memory (RssAnon) is what the process holds itself. On SQLite the database file is")
        w("read through mmap, once per pooled connection, and the pages read count as resident file pages")
        w("(which the kernel may drop at any time) in VmRSS once per mapping; the proportional figure")
        w("(Pss, from smaps_rollup) counts each page once.")
        w("")
        w("| backend | memory | idle | idle, sessions stored | after the burst over one | after the burst over all | peak VmRSS |")
        w("|---|---|---|---|---|---|---|")
        for label, m in memory:
            for kind, key in (("resident (VmRSS)", "rss_kib"), ("anonymous (RssAnon)", "anon_kib"), ("proportional (Pss)", "pss_kib")):
                w("| %s | %s | %s | %s | %s | %s | %s |" % (
                    label, kind, mib(m["idle_before"][key]), mib(m["idle_after_seed"][key]),
                    mib(m["after_burst_one"][key]), mib(m["after_burst_all"][key]),
                    mib(m["after_burst_all"]["hwm_kib"]) if key == "rss_kib" else ""))
        w("")
        for label, m in memory:
            seeded_growth, burst_growth = memory_growth(m)
            rows.append(("%s: %d live sessions cost the process no memory (anonymous resident memory grows ≤ %s: once stored, and over a burst across all of them against the same burst over one)" % (
                label, m["sessions"], mib(NOISE_KIB)),
                "stored %s; burst over all vs over one %s" % (signed_mib(seeded_growth), signed_mib(burst_growth)),
                seeded_growth <= NOISE_KIB and burst_growth <= NOISE_KIB))
    return lines, rows


def explain(raw, failing):
    """What the report says about a session target that is not met."""
    lines = []
    w = lines.append
    offline = raw.load_optional("jwks_verify.json")
    if any(f.startswith("SignIn") for f in failing):
        w("**SignIn vs the hash limit.** As for CheckPassword, whose check it is: the limit is measured")
        w("with nothing else running, while during the run the same cores also carry the load generator,")
        w("PostgreSQL (one statement that reserves the check and reads the account, and the transaction")
        w("that gives the check back and starts the session) and the service's request handling, so the")
        w("hashing threads get less than all of the CPU. The hash limit itself moves by 10 to 20% between")
        w("samples a minute apart on this machine, which is why each run is set against the samples")
        w("beside it. What would close it: hashing cores that the load generator and the database do not")
        w("share.")
        w("")
    if any(f.startswith("VerifyAccessToken") for f in failing):
        w("**VerifyAccessToken vs pgbench's SELECT.** pgbench sends only the SELECT, from C; each call here")
        w("also checks the token's Ed25519 signature in the service%s, and goes through HTTP/2, protobuf" % (
            " (%.0f µs of one core, as the offline verification shows)" % offline["microseconds"] if offline else ""))
        w("and the call wrapper, on the same cores as the load generator and PostgreSQL. A service that needs")
        w("no instant sign-out verifies offline against the JWKS instead, with no call at all.")
        w("")
    if any(f.startswith("RefreshSession") for f in failing):
        w("**RefreshSession vs pgbench's UPDATE.** One refresh changes four rows in one statement (the")
        w("token's row lock, its rotation, its successor, the session) and signs an access token (Ed25519),")
        w("where pgbench's transaction is one UPDATE; the rotation must be atomic, so that concurrent")
        w("refreshes of one token converge and a replayed one is recognised. The shares of the CPU above")
        w("add up to less than both cores: the refreshes wait on one statement in flight at a time, each")
        w("carrying the refreshes that arrived during the one before. Two statements in flight measured")
        w("slower in the one comparison made (5,994 against 7,060 refreshes/s, runs minutes apart on")
        w("2026-12-05), as four had earlier. pgbench's single-row UPDATE, the ceiling, is the figure of this")
        w("machine that moves most between runs (from about 15,500 to 25,600 TPS in the runs of")
        w("2026-12-04 and 2026-12-05), far more than the refresh rate does. What would close it: a")
        w("refresh that changes fewer rows, and PostgreSQL on cores the service does not share.")
        w("")
    if any("cost the process no memory" in f for f in failing):
        w("**Memory and sessions.** The service keeps nothing about a session in the process: each call")
        w("reads the session's row. Anonymous memory that grows with the number of sessions read is a")
        w("cache or a leak to find (compare the two bursts above).")
        w("")
    return lines


if __name__ == "__main__":
    print(standalone(section, explain))
