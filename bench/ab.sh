# This code against an earlier build, path by path, in one sitting: sourced
# by bench/run.sh, run with its settings and helpers when BENCH_AB_BASE names
# the earlier build's account-service binary.
#
# This machine's speed drifts by more than 10% within an hour, so two runs
# made an hour apart cannot tell a 10% change. Here each path is measured on
# the earlier service and on this one in turn, seconds apart, in
# $AB_ROUNDS rounds whose order alternates; bench/report_ab.py compares the
# medians. Both services are driven by this build's load generator, so the
# client is the same on both sides; each side has its own databases, made
# by its own service (their schemas differ) and seeded alike. Results go to
# $RESULTS/ab/SIDE/rROUND/, under the names run.sh gives them.

AB_ROUNDS=${BENCH_AB_ROUNDS:-3}
AB_SIDES=(earlier this)

ab_binary() { # SIDE
    if [ "$1" = earlier ]; then echo "$BENCH_AB_BASE"; else echo "$BIN"; fi
}
ab_pg_url() { echo "postgres://postgres@127.0.0.1:$PG_PORT/ab_$1"; }
ab_sqlite() { echo "$WORK/ab_$1.sqlite"; }

# Each side's databases, created and migrated by its own service, then
# seeded with the same unverified accounts run.sh seeds.
ab_prepare() { # SIDE
    local side=$1
    psql -q "$ADMIN_URL" -c "CREATE DATABASE ab_$side"
    SVC_BIN=$(ab_binary "$side") start_service "$(ab_pg_url "$side")"
    stop_service
    PG_URL=$(ab_pg_url "$side") seed_postgres
    SVC_BIN=$(ab_binary "$side") start_service "sqlite://$(ab_sqlite "$side")"
    stop_service
    python3 bench/seed_sqlite.py "$(ab_sqlite "$side")" "$ACCOUNTS" "$WORK/ab_ids_sqlite_$side.txt"
}

ab_unverify_sqlite() { # DB
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE accounts SET verified = 0'); c.commit()" "$1"
}

# One path on one side, its results written where run.sh writes them.
ab_path() { # PATH SIDE
    local path=$1 side=$2 pg db SVC_BIN
    pg=$(ab_pg_url "$side")
    db=$(ab_sqlite "$side")
    # Read by start_service (bash's locals reach the functions called).
    SVC_BIN=$(ab_binary "$side")
    case $path in
    pg)
        start_service "$pg"
        load register_pg_c4 register --concurrency 4 --connections 4
        load get_grpc_pg_tonic get --ids "$WORK/ids_pg.txt" --concurrency 64 --connections 1
        PG_URL=$pg reset_postgres
        load confirm_grpc_pg confirm --ids "$WORK/ids_pg.txt" --secret-key "$SECRET" --concurrency 64 --connections 8
        PG_URL=$pg reset_postgres
        "$LG" mint-tokens --ids "$WORK/ids_pg.txt" --secret-key "$SECRET" >"$WORK/tokens_pg.txt"
        wrk_confirm confirm_http_pg "$WORK/tokens_pg.txt"
        PG_URL=$pg reset_postgres
        load check_password_pg check-password --secret-key "$SECRET" --concurrency 4 --connections 4
        load locked_flood_pg locked-flood --failures 5 --requests 10000 --concurrency 64 --connections 8
        stop_service
        ;;
    sqlite)
        start_service "sqlite://$db"
        load register_sqlite_c16 register --concurrency 16 --connections 4
        load get_grpc_sqlite_tonic get --ids "$WORK/ab_ids_sqlite_$side.txt" --concurrency 64 --connections 1
        ab_unverify_sqlite "$db"
        load confirm_grpc_sqlite confirm --ids "$WORK/ab_ids_sqlite_$side.txt" --secret-key "$SECRET" \
            --concurrency 64 --connections 8
        ab_unverify_sqlite "$db"
        "$LG" mint-tokens --ids "$WORK/ab_ids_sqlite_$side.txt" --secret-key "$SECRET" >"$WORK/tokens_sqlite.txt"
        wrk_confirm confirm_http_sqlite "$WORK/tokens_sqlite.txt"
        stop_service
        ab_unverify_sqlite "$db"
        ;;
    events)
        start_service "$pg"
        "$LG" events --addr "http://$GRPC" --latency-samples 300 --burst 20000 --concurrency 64 --replays 21 --json >"$RESULTS/events_pg.json"
        stop_service
        rm -f "$WORK/ab_events.sqlite"*
        start_service "sqlite://$WORK/ab_events.sqlite"
        "$LG" events --addr "http://$GRPC" --latency-samples 300 --burst 5000 --concurrency 16 --replays 21 --json >"$RESULTS/events_sqlite.json"
        stop_service
        ;;
    mail)
        psql -q "$pg" -c "DELETE FROM email_outbox" -c "INSERT INTO email_outbox (id, account_id, kind, recipient, subject, text_body, html_body, next_attempt_at, created_at)
            SELECT md5('mail' || id)::uuid, id, 'welcome', email, 'Ecoms Welcome Mail',
                   repeat('Welcome to Ecoms! Please confirm your e-mail address. ', 8),
                   repeat('<p>Welcome to Ecoms! Please confirm your e-mail address.</p>', 8), now(), now()
            FROM accounts WHERE email LIKE 'bench%@bench.example' LIMIT $MAILS"
        "$LG" smtp-sink --addr 127.0.0.1:25526 --expect "$MAILS" --timeout 300 --json >"$RESULTS/mail_drain.json" &
        local sink=$!
        sleep 0.5
        start_service "$pg" EMAIL_BACKEND=smtp SMTP_URL=smtp://127.0.0.1:25526
        wait "$sink"
        stop_service
        ;;
    esac
}

ab_bench() {
    [ -x "${BENCH_AB_BASE:-}" ] || { echo "BENCH_AB_BASE must name the earlier build's account-service binary" >&2; exit 2; }
    local side round path order results=$RESULTS
    step "earlier code against this code: each side's databases, made by its own service"
    for side in "${AB_SIDES[@]}"; do
        ab_prepare "$side"
    done
    mkdir -p "$results/ab"
    date -u +%H:%M >"$results/ab/started"
    for round in $(seq 1 "$AB_ROUNDS"); do
        order=("${AB_SIDES[@]}")
        [ $((round % 2)) -eq 0 ] && order=("${AB_SIDES[1]}" "${AB_SIDES[0]}")
        for path in pg sqlite events mail; do
            for side in "${order[@]}"; do
                step "earlier code against this code, round $round of $AB_ROUNDS: $path, $side code"
                RESULTS=$results/ab/$side/r$round
                mkdir -p "$RESULTS"
                ab_path "$path" "$side"
                RESULTS=$results
            done
        done
    done
    date -u +%H:%M >"$results/ab/finished"
}
