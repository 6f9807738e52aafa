#!/usr/bin/env bash
# Measures account-service against this machine's own limits in one run and
# writes BENCHMARKS.md: the argon2 hash limit, Register throughput, confirmation
# throughput over gRPC and HTTP beside PostgreSQL's (pgbench) and SQLite's own
# ceiling for the same UPDATE, GetAccount by id (from account-loadgen and from
# nghttp2's h2load) beside their ceiling for the same SELECT, resident memory
# idle and under a 500-concurrent burst, the outbox's delivery rate into a
# local SMTP server, what an idle service costs the database (transactions
# per minute) and a lone mail (its latency), and how the account event stream
# keeps up; the session RPCs (bench/sessions.sh); and profile images
# (bench/images.sh).
#
#   bench/run.sh                       # BENCH_DURATION=10 seconds per measurement
#   BENCH_ONLY=sessions bench/run.sh   # the session steps alone, reported beside
#                                      # the raw results (BENCHMARKS.md untouched)
#   BENCH_ONLY=images bench/run.sh     # the profile-image steps alone, likewise
#   BENCH_AB_BASE=BINARY BENCH_AB_DESCRIPTION=TEXT bench/run.sh
#                                      # BENCHMARKS.md also compares each path with
#                                      # an earlier build's service, the two measured
#                                      # in turn (bench/ab.sh); BENCH_ONLY=ab runs
#                                      # that comparison alone
#   BENCH_BASELINE=DIR BENCH_BASELINE_DESCRIPTION=TEXT bench/run.sh
#                                      # BENCHMARKS.md also compares each path with
#                                      # DIR, the raw results of a run of earlier
#                                      # code (bench/report_baseline.py)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10}
ACCOUNTS=${BENCH_ACCOUNTS:-200000}
MAILS=${BENCH_MAILS:-5000}
# The idle measurement: transactions are counted over a window right after
# start-up has settled, and over a later one, once each pooled connection has
# prepared the few statements an idle instance runs (PostgreSQL counts each
# preparation as a transaction of its own).
IDLE_SETTLE=${BENCH_IDLE_SETTLE:-15}
IDLE_SECONDS=${BENCH_IDLE_SECONDS:-60}
IDLE_LATER=${BENCH_IDLE_LATER:-120}
CORES=$(nproc)
PG_PORT=${BENCH_PG_PORT:-25460}
GRPC=127.0.0.1:25151
HTTP=127.0.0.1:25180
SECRET=bench-secret-key-0123456789abcdef0123456789abcdef
WORK=$(mktemp -d /tmp/account-bench.XXXXXX)
RESULTS=$WORK/results
mkdir -p "$RESULTS"
# PostgreSQL runs as its own user and must reach its directory inside.
chmod 755 "$WORK"

case ${BENCH_ONLY:-} in
"" | sessions | images | ab) ;;
*) echo "BENCH_ONLY knows three sets of steps: sessions, images, ab" >&2; exit 2 ;;
esac

step() { printf '\n[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

step "tools"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
if [ "${#missing[@]}" -gt 0 ]; then
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
command -v psql >/dev/null && test -x "$PG_BIN/pgbench"

step "building release binaries"
cargo build --release --locked --workspace
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/account-service
LG=$TARGET/release/account-loadgen

step "starting a throwaway PostgreSQL on port $PG_PORT"
id postgres >/dev/null 2>&1 || as_root useradd --system --no-create-home postgres
PG_DIR=$WORK/pg
mkdir -p "$PG_DIR" && as_root chown postgres "$PG_DIR"
pg() { as_root su postgres -s /bin/sh -c "$*"; }
pg "'$PG_BIN/initdb' -D '$PG_DIR/data' -U postgres -A trust >/dev/null"
pg "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -l '$PG_DIR/log' -w -o \"-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=300\" start" >/dev/null
SVC_PID=
MAIL_PID=
cleanup() {
    [ -n "$SVC_PID" ] && kill "$SVC_PID" 2>/dev/null || true
    [ -n "$MAIL_PID" ] && kill "$MAIL_PID" 2>/dev/null || true
    pg "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -m fast stop" >/dev/null 2>&1 || true
}
trap cleanup EXIT
ADMIN_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
PG_URL=postgres://postgres@127.0.0.1:$PG_PORT/bench
psql -q "$ADMIN_URL" -c "CREATE DATABASE bench"

start_service() { # DATABASE_URL [VAR=VALUE ...]
    local url=$1
    shift
    env DATABASE_URL="$url" SECRET_KEY="$SECRET" GRPC_ADDR=$GRPC HTTP_ADDR=$HTTP \
        EMAIL_BACKEND=console HASH_QUEUE=64 RATE_LIMITS=off RUST_LOG=warn "$@" \
        "${SVC_BIN:-$BIN}" >"$WORK/service.out" 2>>"$WORK/service.err" &
    SVC_PID=$!
    for _ in $(seq 1 100); do
        curl -fs "http://$HTTP/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the service did not become ready; its log:" >&2
    cat "$WORK/service.err" >&2
    exit 1
}
stop_service() {
    kill -TERM "$SVC_PID"
    wait "$SVC_PID" || true
    SVC_PID=
}
proc_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$SVC_PID/status"; }

summary() { # NAME
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("  %-22s %8.1f req/s  p50 %7.2f ms  p99 %7.2f ms  %s" % (sys.argv[2], r["throughput"], r["latency_ms"]["p50"], r["latency_ms"]["p99"], r["codes"]))' "$RESULTS/$1.json" "$1"
}
# The service's top functions over the next 5 s of the load running now
# (perf, cpu-clock), into profile_NAME_service.txt.
perf_service() { # NAME
    perf record -q -e cpu-clock -F 499 -p "$SVC_PID" -o "$WORK/perf-$1.data" -- sleep 5 >/dev/null 2>&1 || true
    perf report -q -i "$WORK/perf-$1.data" --stdio --no-children --sort dso,symbol 2>/dev/null \
        | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//' | cut -c1-150 \
        | head -25 >"$RESULTS/profile_$1_service.txt" || true
}

load() { # NAME SUBCOMMAND ARGS...
    local name=$1
    shift
    "$LG" "$@" --addr "http://$GRPC" --duration "$DURATION" --json >"$RESULTS/$name.json"
    summary "$name"
}

# h2load (nghttp2) sends one fixed body again and again, which a gRPC call
# with one fixed request is: an HTTP/2 POST of a framed message. It reads
# HTTP statuses only, never grpc-status, so the same call is first made with
# account-loadgen, which reads every answer's, and must answer only OK.
GET_PATH=/account.v1.AccountService/GetAccount
HEALTH_PATH=/grpc.health.v1.Health/Check
h2load_body() { # NAME get ID | NAME verify TOKENS_FILE | NAME health: the body file, and the check of its call
    local name=$1 call=$2 ids=()
    if [ "$call" = get ]; then
        "$LG" grpc-body get --id "$3" >"$WORK/$name.body"
        echo "$3" >"$WORK/$name.ids"
        ids=(--ids "$WORK/$name.ids")
    elif [ "$call" = verify ]; then
        "$LG" grpc-body verify --tokens "$3" >"$WORK/$name.body"
        call=verify-token
        ids=(--tokens "$3")
    else
        "$LG" grpc-body health >"$WORK/$name.body"
    fi
    "$LG" "$call" --lean --addr "http://$GRPC" "${ids[@]}" --requests 1000 --concurrency 64 --connections 1 \
        --fail-on-error --json >"$RESULTS/${name}_check.json"
    only_ok "$RESULTS/${name}_check.json" "the call for h2load"
}
only_ok() { # RESULT_FILE WHAT: fails unless every call of the result answered OK
    python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["codes"]; sys.exit(0 if list(c)==["OK"] else "%s does not answer OK: %s" % (sys.argv[2], c))' "$1" "$2"
}
h2load_calls() { # BODY_NAME PATH SECONDS LOG: 64 calls in flight on one connection, as above
    h2load -c 1 -m 64 -t 1 -D "$3" -d "$WORK/$1.body" \
        -H "content-type: application/grpc" -H "te: trailers" --log-file "$4" "http://$GRPC$2"
}
h2load_run() { # NAME PATH
    h2load_calls "$1" "$2" "$DURATION" "$WORK/$1.h2load.log" >"$RESULTS/$1.h2load.txt"
    python3 bench/h2load_json.py "$RESULTS/$1.h2load.txt" "$WORK/$1.h2load.log" "$1" >"$RESULTS/$1.json"
    summary "$1"
}

pgbench_run() { # NAME SCRIPT VARIABLE=VALUE: pgbench's rate for one statement, 64 clients
    "$PG_BIN/pgbench" -n -M prepared -c 64 -j 2 -T "$DURATION" -D "$3" -f "$2" "$PG_URL" >"$RESULTS/$1.txt" 2>&1
    grep -E "^tps" "$RESULTS/$1.txt" | sed 's/^/  /'
}

wrk_confirm() { # NAME TOKENS_FILE
    TOKENS_FILE=$2 wrk -t2 -c64 -d"${DURATION}s" --latency -s bench/confirm.lua "http://$HTTP" >"$RESULTS/$1.wrk.txt"
    grep -E "Requests/sec|Non-2xx" "$RESULTS/$1.wrk.txt" | sed 's/^/  /'
}

seed_postgres() {
    psql -q "$PG_URL" -c "INSERT INTO accounts (id, email, password_hash, created_at, updated_at)
        SELECT md5('bench' || i)::uuid, 'bench' || i || '@bench.example',
               '\$argon2id\$v=19\$m=19456,t=2,p=1\$c2FsdHNhbHQ\$aGFzaA', now(), now()
        FROM generate_series(1, $ACCOUNTS) AS i"
    psql -Atq "$PG_URL" -c "SELECT id FROM accounts WHERE email LIKE 'bench%@bench.example' ORDER BY random()" >"$WORK/ids_pg.txt"
}
reset_postgres() { psql -q "$PG_URL" -c "UPDATE accounts SET verified = FALSE WHERE verified"; }

# This machine's speed drifts by more than 10% from minute to minute (it is a
# virtual machine on a shared host), so the hash limit is sampled three times,
# beside the runs it is compared with, and BENCHMARKS.md uses the mean.
hash_limit() { # NAME
    "$LG" hash-limit --duration "$DURATION" --json | tee "$RESULTS/$1.json"
}
source bench/sessions.sh
source bench/images.sh
source bench/ab.sh
# BENCH_ONLY=NAME: NAME's steps alone, reported beside the raw results.
if [ -n "${BENCH_ONLY:-}" ]; then
    "${BENCH_ONLY}_bench"
    python3 "bench/report_${BENCH_ONLY}.py" "$RESULTS" \
        "BENCH_ONLY=$BENCH_ONLY bench/run.sh (BENCH_DURATION=$DURATION)" >"$WORK/BENCHMARKS-$BENCH_ONLY.md"
    echo "raw results: $RESULTS"
    cat "$WORK/BENCHMARKS-$BENCH_ONLY.md"
    exit 0
fi
step "machine limit: argon2id hashes per second on $CORES cores"
hash_limit hash_limit

step "PostgreSQL: Register throughput at concurrency $CORES, 4, 16, 64"
start_service "$PG_URL"
for c in $CORES 4 16 64; do
    load "register_pg_c$c" register --concurrency "$c" --connections 4
done
stop_service
step "machine limit again, after the Register runs"
hash_limit hash_limit_2

step "PostgreSQL: seeding $ACCOUNTS unverified accounts"
seed_postgres

step "PostgreSQL: GetAccount by id, confirmation over gRPC, over HTTP, and pgbench's ceiling for the same SELECT and UPDATE"
start_service "$PG_URL"
# Look-ups: 64 calls in flight on one HTTP/2 connection, as one caller's
# tonic Channel (or grpc-go ClientConn) sends them, and spread over 8.
load get_grpc_pg get --lean --ids "$WORK/ids_pg.txt" --concurrency 64 --connections 1
load get_grpc_pg_c8 get --lean --ids "$WORK/ids_pg.txt" --concurrency 64 --connections 8
load get_grpc_pg_tonic get --ids "$WORK/ids_pg.txt" --concurrency 64 --connections 1
# The same load from h2load, which asks for one account again and again.
h2load_body get_h2load_pg get "$(head -n1 "$WORK/ids_pg.txt")"
h2load_run get_h2load_pg "$GET_PATH"
reset_postgres
load confirm_grpc_pg confirm --ids "$WORK/ids_pg.txt" --secret-key "$SECRET" --concurrency 64 --connections 8
# Where the CPU goes while confirming: shares of the machine per process, and
# per function inside the service (perf, when the machine has it).
reset_postgres
"$LG" confirm --addr "http://$GRPC" --ids "$WORK/ids_pg.txt" --secret-key "$SECRET" \
    --concurrency 64 --connections 8 --duration 8 --json >/dev/null &
LOAD_PID=$!
sleep 1
python3 bench/cpu_share.py "$SVC_PID" "$LOAD_PID" 5 | tee "$RESULTS/cpu_share_confirm.json"
wait "$LOAD_PID"
if command -v perf >/dev/null; then
    reset_postgres
    "$LG" confirm --addr "http://$GRPC" --ids "$WORK/ids_pg.txt" --secret-key "$SECRET" \
        --concurrency 64 --connections 8 --duration 8 --json >/dev/null &
    LOAD_PID=$!
    sleep 1
    perf_service confirm
    wait "$LOAD_PID"
fi
reset_postgres
"$LG" mint-tokens --ids "$WORK/ids_pg.txt" --secret-key "$SECRET" >"$WORK/tokens_pg.txt"
wrk_confirm confirm_http_pg "$WORK/tokens_pg.txt"
stop_service
reset_postgres
pgbench_run pgbench_confirm bench/confirm_update.sql accounts="$ACCOUNTS"
pgbench_run pgbench_get bench/get_select.sql accounts="$ACCOUNTS"

step "memory: idle, then a burst of 500 concurrent Register calls"
start_service "$PG_URL"
sleep 2
IDLE_KIB=$(proc_kib VmRSS)
"$LG" register --addr "http://$GRPC" --concurrency 500 --requests 500 --connections 8 --duration 120 --json >"$RESULTS/burst_500.json"
PEAK_KIB=$(proc_kib VmHWM)
AFTER_KIB=$(proc_kib VmRSS)
echo "{\"idle_kib\": $IDLE_KIB, \"peak_kib\": $PEAK_KIB, \"after_burst_kib\": $AFTER_KIB}" | tee "$RESULTS/memory.json"
cat "$RESULTS/burst_500.json"
stop_service

step "shared limits: Register and ResendConfirmation with rate-limit buckets in memory, then in PostgreSQL"
# Every limit on, and high enough that nothing is refused: what is measured
# is what taking from the buckets costs.
for store in memory postgres; do
    start_service "$PG_URL" RATE_LIMITS=on RATE_LIMIT_STORE=$store RATE_LIMIT_PER_CLIENT=1000000000 RATE_LIMIT_PER_EMAIL=10
    load "limits_${store}_register" register --concurrency 16 --connections 4
    load "limits_${store}_resend" resend --concurrency 64 --connections 8
    stop_service
done

step "machine limit again, before CheckPassword"
hash_limit hash_limit_3
step "sign-in: CheckPassword with the right password, and a flood on a locked-out address"
start_service "$PG_URL"
load check_password_pg check-password --secret-key "$SECRET" --concurrency 4 --connections 4
HASHES_BEFORE=$(curl -fs "http://$HTTP/metrics" | awk '$1 == "account_password_hashes_total" {print $2}')
load locked_flood_pg locked-flood --failures 5 --requests 10000 --concurrency 64 --connections 8
HASHES_AFTER=$(curl -fs "http://$HTTP/metrics" | awk '$1 == "account_password_hashes_total" {print $2}')
# The five failures that lock the address are the only hashes expected.
echo "{\"before\": $HASHES_BEFORE, \"after\": $HASHES_AFTER}" | tee "$RESULTS/locked_flood_hashes.json"
stop_service

sessions_bench

images_bench

step "events: lone changes timed to an idle watcher, then a watcher following a burst of changes and one replaying it"
start_service "$PG_URL"
"$LG" events --addr "http://$GRPC" --latency-samples 300 --burst 20000 --concurrency 64 --replays 21 --json | tee "$RESULTS/events_pg.json"
stop_service
start_service "sqlite://$WORK/events.sqlite"
"$LG" events --addr "http://$GRPC" --latency-samples 300 --burst 5000 --concurrency 16 --replays 21 --json | tee "$RESULTS/events_sqlite.json"
stop_service

step "memory: ResendConfirmation flooded with 5000 invalid 60 KiB addresses, then 20000 distinct valid ones"
# The per-address limiter is on (it is what such a flood targets); all load
# comes from one address, so the per-client limit is off.
start_service "$PG_URL" RATE_LIMITS=on RATE_LIMIT_PER_CLIENT=0
sleep 1
"$LG" resend-flood --addr "http://$GRPC" --pid "$SVC_PID" --json | tee "$RESULTS/resend_flood.json"
stop_service

step "timing: ResendConfirmation for unknown, verified and unverified addresses"
start_service "$PG_URL"
"$LG" resend-timing --addr "http://$GRPC" --accounts 300 --secret-key "$SECRET" --json | tee "$RESULTS/resend_timing_pg.json"
stop_service
start_service "sqlite://$WORK/timing.sqlite"
"$LG" resend-timing --addr "http://$GRPC" --accounts 300 --secret-key "$SECRET" --json | tee "$RESULTS/resend_timing_sqlite.json"
stop_service

step "mail: delivering $MAILS queued messages into a local SMTP server"
psql -q "$PG_URL" -c "INSERT INTO email_outbox (id, account_id, kind, recipient, subject, text_body, html_body, next_attempt_at, created_at)
    SELECT md5('mail' || id)::uuid, id, 'welcome', email, 'Ecoms Welcome Mail',
           repeat('Welcome to Ecoms! Please confirm your e-mail address. ', 8),
           repeat('<p>Welcome to Ecoms! Please confirm your e-mail address.</p>', 8), now(), now()
    FROM accounts WHERE email LIKE 'bench%@bench.example' LIMIT $MAILS"
"$LG" smtp-sink --addr 127.0.0.1:25526 --expect "$MAILS" --timeout 300 --json >"$RESULTS/mail_drain.json" &
SINK_PID=$!
sleep 0.5
start_service "$PG_URL" EMAIL_BACKEND=smtp SMTP_URL=smtp://127.0.0.1:25526
wait "$SINK_PID"
cat "$RESULTS/mail_drain.json"
stop_service

step "idle: transactions on the database over ${IDLE_SECONDS}s of an idle service, then one mail's latency"
# Default settings (RATE_LIMITS on, EMAIL_POLL_INTERVAL, METRICS_REFRESH).
# pg_stat_database is read from the admin database, so the probe is not
# counted; autovacuum is paused meanwhile, since its workers' transactions
# on the bench database (after the writes above) would be counted too.
IDLE_PROBE="SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'bench'"
psql -q "$ADMIN_URL" -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
rm -f "$WORK/idle.done"
"$LG" mail-latency --addr "http://$GRPC" --smtp 127.0.0.1:25527 --wait-for "$WORK/idle.done" \
    --timeout 30 --json >"$RESULTS/idle_mail.json" &
MAIL_PID=$!
sleep 0.5
start_service "$PG_URL" EMAIL_BACKEND=smtp SMTP_URL=smtp://127.0.0.1:25527 RATE_LIMITS=on
sleep "$IDLE_SETTLE"
XACT_FIRST=$(psql -Atq "$ADMIN_URL" -c "$IDLE_PROBE")
sleep "$IDLE_SECONDS"
XACT_FIRST_END=$(psql -Atq "$ADMIN_URL" -c "$IDLE_PROBE")
sleep $((IDLE_LATER - IDLE_SETTLE - IDLE_SECONDS))
XACT_BEFORE=$(psql -Atq "$ADMIN_URL" -c "$IDLE_PROBE")
sleep "$IDLE_SECONDS"
XACT_AFTER=$(psql -Atq "$ADMIN_URL" -c "$IDLE_PROBE")
touch "$WORK/idle.done"
wait "$MAIL_PID" || echo "  the mail did not arrive" >&2
MAIL_PID=
stop_service
psql -q "$ADMIN_URL" -c "ALTER SYSTEM RESET autovacuum" -c "SELECT pg_reload_conf()" >/dev/null
python3 -c 'import json,sys; n, s = int(sys.argv[2]) - int(sys.argv[1]), float(sys.argv[3]); first = int(sys.argv[7]) - int(sys.argv[6]); print(json.dumps({"settle_s": float(sys.argv[4]), "later_s": float(sys.argv[5]), "window_s": s, "first_transactions": first, "transactions": n, "per_minute": n * 60 / s, "per_10s": n * 10 / s}))' \
    "$XACT_BEFORE" "$XACT_AFTER" "$IDLE_SECONDS" "$IDLE_SETTLE" "$IDLE_LATER" "$XACT_FIRST" "$XACT_FIRST_END" | tee "$RESULTS/idle_xact.json"
cat "$RESULTS/idle_mail.json"

step "SQLite: Register, GetAccount by id, confirmation over gRPC and HTTP, and plain sqlite3 loops of the same SELECT and UPDATE"
SQLITE_DB=$WORK/bench.sqlite
start_service "sqlite://$SQLITE_DB"
for c in $CORES 16; do
    load "register_sqlite_c$c" register --concurrency "$c" --connections 4
done
stop_service
python3 bench/seed_sqlite.py "$SQLITE_DB" "$ACCOUNTS" "$WORK/ids_sqlite.txt"
start_service "sqlite://$SQLITE_DB"
# The plain sqlite3 SELECT loop is sampled just before and just after the
# GetAccount run it is compared with (the idle service beside it costs
# nothing), so a drift in the machine's speed moves both alike.
python3 bench/sqlite_loop.py "$SQLITE_DB" "$WORK/ids_sqlite.txt" "$DURATION" select | tee "$RESULTS/sqlite_select_loop.json"
load get_grpc_sqlite get --lean --ids "$WORK/ids_sqlite.txt" --concurrency 64 --connections 1
python3 bench/sqlite_loop.py "$SQLITE_DB" "$WORK/ids_sqlite.txt" "$DURATION" select | tee "$RESULTS/sqlite_select_loop_2.json"
load get_grpc_sqlite_c8 get --lean --ids "$WORK/ids_sqlite.txt" --concurrency 64 --connections 8
load get_grpc_sqlite_tonic get --ids "$WORK/ids_sqlite.txt" --concurrency 64 --connections 1
h2load_body get_h2load_sqlite get "$(head -n1 "$WORK/ids_sqlite.txt")"
h2load_run get_h2load_sqlite "$GET_PATH"
# The same calls' cost without the database: the standard health check.
load health_sqlite health --lean --concurrency 64 --connections 1
h2load_body health_h2load_sqlite health
h2load_run health_h2load_sqlite "$HEALTH_PATH"
# Where the CPU goes while looking up on SQLite, as for confirmation above,
# and, from the shares and the rate of the same run, the CPU time per call.
for call in get health; do
    ids=()
    [ "$call" = get ] && ids=(--ids "$WORK/ids_sqlite.txt")
    "$LG" "$call" --lean --addr "http://$GRPC" "${ids[@]}" --concurrency 64 --connections 1 \
        --duration 8 --json >"$RESULTS/shares_run_${call}_sqlite.json" &
    LOAD_PID=$!
    sleep 1
    python3 bench/cpu_share.py "$SVC_PID" "$LOAD_PID" 5 | tee "$RESULTS/cpu_share_${call}_sqlite.json"
    wait "$LOAD_PID"
    # And with h2load making the same load.
    path=$GET_PATH
    [ "$call" = health ] && path=$HEALTH_PATH
    h2load_calls "${call}_h2load_sqlite" "$path" 8 /dev/null >"$RESULTS/shares_run_${call}_h2load_sqlite.h2load.txt" &
    LOAD_PID=$!
    sleep 1
    python3 bench/cpu_share.py "$SVC_PID" "$LOAD_PID" 5 | tee "$RESULTS/cpu_share_${call}_h2load_sqlite.json"
    wait "$LOAD_PID"
    python3 bench/h2load_json.py "$RESULTS/shares_run_${call}_h2load_sqlite.h2load.txt" /dev/null "$call" \
        >"$RESULTS/shares_run_${call}_h2load_sqlite.json"
done
if command -v perf >/dev/null; then
    "$LG" get --lean --addr "http://$GRPC" --ids "$WORK/ids_sqlite.txt" --concurrency 64 --connections 1 \
        --duration 8 --json >/dev/null &
    LOAD_PID=$!
    sleep 1
    perf_service get_sqlite
    wait "$LOAD_PID"
fi
load confirm_grpc_sqlite confirm --ids "$WORK/ids_sqlite.txt" --secret-key "$SECRET" --concurrency 64 --connections 8
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE accounts SET verified = 0'); c.commit()" "$SQLITE_DB"
"$LG" mint-tokens --ids "$WORK/ids_sqlite.txt" --secret-key "$SECRET" >"$WORK/tokens_sqlite.txt"
wrk_confirm confirm_http_sqlite "$WORK/tokens_sqlite.txt"
stop_service
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE accounts SET verified = 0'); c.commit()" "$SQLITE_DB"
python3 bench/sqlite_loop.py "$SQLITE_DB" "$WORK/ids_sqlite.txt" "$DURATION" update | tee "$RESULTS/sqlite_loop.json"

[ -n "${BENCH_AB_BASE:-}" ] && ab_bench

step "writing BENCHMARKS.md"
python3 bench/report.py "$RESULTS" "bench/run.sh (BENCH_DURATION=$DURATION)" >BENCHMARKS.md
echo "raw results: $RESULTS"
sed -n '1,60p' BENCHMARKS.md
