# The session RPCs, sourced by bench/run.sh and run with its settings and
# helpers: SignIn beside the argon2 hash limit; the resident memory of the
# service before and after 100,000 live sessions and a burst of calls over
# them, on each backend; VerifyAccessToken (from account-loadgen and h2load)
# and chained RefreshSession beside pgbench's single-row SELECT and UPDATE
# of the same sessions table; and offline verification against the JWKS the
# sidecar serves, on one core.

SESSION_ACCOUNTS=${BENCH_SESSION_ACCOUNTS:-1000}
SIGN_IN_ROUNDS=${BENCH_SIGN_IN_ROUNDS:-3}
SESSIONS=${BENCH_SESSIONS:-100000}
# Distinct sessions whose access tokens the memory burst verifies.
SESSION_SAMPLE=${BENCH_SESSION_SAMPLE:-20000}
SESSION_ISSUER=https://bench.example
VERIFY_PATH=/account.v1.AccountService/VerifyAccessToken

# Each SQLite connection maps the database file on its own, and VmRSS counts
# a page once per mapping; the proportional figure (Pss) counts it once.
pss_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$SVC_PID/smaps_rollup"; }
memory_point() { # NAME FILE: the running service's resident memory, one JSON member
    printf '"%s": {"rss_kib": %s, "anon_kib": %s, "file_kib": %s, "pss_kib": %s, "hwm_kib": %s}\n' "$1" \
        "$(proc_kib VmRSS)" "$(proc_kib RssAnon)" "$(proc_kib RssFile)" "$(pss_kib Pss)" "$(proc_kib VmHWM)" >>"$2"
}

# Resident memory idle before and after the sessions are seeded, after a
# burst over one session and one account, and after the same burst over
# many: the difference is what the sessions themselves cost the process.
sessions_memory() { # BACKEND PAIRS_FILE ACCOUNT_IDS_FILE SEED_COMMAND...
    local backend=$1 pairs=$2 ids=$3 points=$WORK/memory_sessions_$1.points
    shift 3
    : >"$points"
    sleep 2
    memory_point idle_before "$points"
    "$@"
    sleep 2
    memory_point idle_after_seed "$points"
    "$LG" mint-access-tokens --sessions "$pairs" --secret-key "$SECRET" --issuer "$SESSION_ISSUER" \
        >"$WORK/session_tokens_$backend.txt"
    head -n1 "$WORK/session_tokens_$backend.txt" >"$WORK/session_token_$backend.txt"
    head -n1 "$ids" >"$WORK/session_account_$backend.txt"
    local verify=$SESSION_SAMPLE list=$((SESSION_ACCOUNTS * 5)) scope
    for scope in one all; do
        local tokens=$WORK/session_tokens_$backend.txt accounts=$ids
        if [ "$scope" = one ]; then
            tokens=$WORK/session_token_$backend.txt
            accounts=$WORK/session_account_$backend.txt
        fi
        "$LG" verify-token --addr "http://$GRPC" --tokens "$tokens" --requests "$verify" \
            --concurrency 64 --connections 1 --duration 600 --fail-on-error --json \
            >"$RESULTS/memory_verify_${scope}_$backend.json"
        only_ok "$RESULTS/memory_verify_${scope}_$backend.json" "VerifyAccessToken"
        "$LG" list-sessions --addr "http://$GRPC" --ids "$accounts" --requests "$list" \
            --concurrency 64 --connections 1 --duration 600 --fail-on-error --json \
            >"$RESULTS/memory_list_${scope}_$backend.json"
        only_ok "$RESULTS/memory_list_${scope}_$backend.json" "ListSessions"
        memory_point "after_burst_$scope" "$points"
    done
    python3 -c 'import json,sys; print(json.dumps({"sessions": int(sys.argv[2]), "accounts": int(sys.argv[3]), "verified": int(sys.argv[4]), "listed": int(sys.argv[5]), **json.loads("{" + ",".join(open(sys.argv[1]).read().split("\n")[:-1]) + "}")}))' \
        "$points" "$SESSIONS" "$SESSION_ACCOUNTS" "$verify" "$list" | tee "$RESULTS/memory_sessions_$backend.json"
}

seed_session_accounts_pg() {
    psql -q -v ON_ERROR_STOP=1 "$PG_URL" -v hash="$(cat "$WORK/password.hash")" -v n="$SESSION_ACCOUNTS" <<'SQL'
INSERT INTO accounts (id, email, password_hash, verified, created_at, updated_at)
SELECT md5('sessacct' || j)::uuid, 'sess' || j || '@bench.example', :'hash', TRUE, now(), now()
FROM generate_series(1, :n) AS j;
SQL
    seq 1 "$SESSION_ACCOUNTS" | sed 's/.*/sess&@bench.example/' >"$WORK/session_emails.txt"
    psql -Atq "$PG_URL" -c "SELECT md5('sessacct' || j)::uuid FROM generate_series(1, $SESSION_ACCOUNTS) AS j" \
        >"$WORK/session_accounts_pg.txt"
}

# Session i belongs to account 1 + (i - 1) % accounts, so that pgbench can
# name any of them from a random number, as it names accounts.
seed_sessions_pg() {
    psql -q -v ON_ERROR_STOP=1 "$PG_URL" -v n="$SESSION_ACCOUNTS" -v s="$SESSIONS" <<'SQL'
INSERT INTO sessions (id, account_id, created_at, last_used_at, user_agent, ip_address)
SELECT md5('session' || i)::uuid, md5('sessacct' || (1 + (i - 1) % :n))::uuid, now(), now(),
       'Mozilla/5.0 (X11; Linux x86_64) bench', '203.0.113.' || (i % 250)
FROM generate_series(1, :s) AS i;
INSERT INTO refresh_tokens (token_hash, session_id, issued_at)
SELECT md5('token' || i) || md5('token.' || i), md5('session' || i)::uuid, now()
FROM generate_series(1, :s) AS i;
ANALYZE sessions, refresh_tokens;
SQL
    psql -Atq -F ' ' "$PG_URL" -c "SELECT md5('sessacct' || (1 + (i - 1) % $SESSION_ACCOUNTS))::uuid, md5('session' || i)::uuid
        FROM generate_series(1, $SESSIONS) AS i ORDER BY random() LIMIT $SESSION_SAMPLE" >"$WORK/session_pairs_pg.txt"
}

# Where the CPU goes while refreshing: shares of the machine per process, and
# per function inside the service (perf, when the machine has it). Each run
# signs in its 64 sessions first, so the windows open a few seconds in.
refresh_profile() {
    local load_pid
    "$LG" refresh --addr "http://$GRPC" --emails "$WORK/session_emails.txt" \
        --concurrency 64 --connections 1 --duration 10 --json >/dev/null &
    load_pid=$!
    sleep 3
    python3 bench/cpu_share.py "$SVC_PID" "$load_pid" 5 >"$RESULTS/cpu_share_refresh_pg.json"
    wait "$load_pid"
    command -v perf >/dev/null || return 0
    "$LG" refresh --addr "http://$GRPC" --emails "$WORK/session_emails.txt" \
        --concurrency 64 --connections 1 --duration 10 --json >/dev/null &
    load_pid=$!
    sleep 3
    perf_service refresh_pg
    wait "$load_pid"
}

sessions_bench() {
    "$LG" password-hash >"$WORK/password.hash"

    step "sessions, PostgreSQL: SignIn at concurrency 4 ($SIGN_IN_ROUNDS runs, between samples of the hash limit) and 16 over $SESSION_ACCOUNTS verified accounts"
    # Started first: it creates the schema when the steps run alone.
    start_service "$PG_URL" ACCESS_TOKEN_ISSUER="$SESSION_ISSUER"
    seed_session_accounts_pg
    # The machine's speed drifts from minute to minute, so each SignIn run
    # at 4 in flight sits between two samples of the hash limit, and is
    # judged against the two.
    hash_limit hash_limit_signin_0
    for r in $(seq 1 "$SIGN_IN_ROUNDS"); do
        load "sign_in_pg_c4_r$r" sign-in --emails "$WORK/session_emails.txt" --concurrency 4 --connections 4
        hash_limit "hash_limit_signin_$r"
    done
    load sign_in_pg_c16 sign-in --emails "$WORK/session_emails.txt" --concurrency 16 --connections 4

    step "sessions, PostgreSQL: resident memory before and after $SESSIONS sessions, and a burst of calls over them"
    sessions_memory pg "$WORK/session_pairs_pg.txt" "$WORK/session_accounts_pg.txt" seed_sessions_pg

    step "sessions, PostgreSQL: VerifyAccessToken (account-loadgen and h2load), chained RefreshSession at 64 in flight"
    load verify_token_pg verify-token --tokens "$WORK/session_token_pg.txt" --concurrency 64 --connections 1
    h2load_body verify_h2load_pg verify "$WORK/session_token_pg.txt"
    h2load_run verify_h2load_pg "$VERIFY_PATH"
    load refresh_pg refresh --emails "$WORK/session_emails.txt" --concurrency 64 --connections 1
    refresh_profile
    curl -fs "http://$HTTP/.well-known/jwks.json" >"$WORK/jwks.json"
    stop_service

    step "sessions, PostgreSQL: pgbench's ceiling for a single-row UPDATE and SELECT of a session"
    pgbench_run pgbench_session_update bench/session_update.sql sessions="$SESSIONS"
    pgbench_run pgbench_session_select bench/session_select.sql sessions="$SESSIONS"

    step "sessions, SQLite: resident memory before and after $SESSIONS sessions, and a burst of calls over them"
    local db=$WORK/sessions.sqlite
    start_service "sqlite://$db" ACCESS_TOKEN_ISSUER="$SESSION_ISSUER"
    sessions_memory sqlite "$WORK/session_pairs_sqlite.txt" "$WORK/session_accounts_sqlite.txt" \
        python3 bench/seed_sessions_sqlite.py "$db" "$SESSION_ACCOUNTS" "$SESSIONS" "$WORK/password.hash" \
        "$WORK/session_pairs_sqlite.txt" "$SESSION_SAMPLE" "$WORK/session_accounts_sqlite.txt"
    stop_service

    step "sessions: an access token verified offline against the sidecar's JWKS, on one core"
    "$LG" jwks-verify --jwks "$WORK/jwks.json" --tokens "$WORK/session_token_pg.txt" --issuer "$SESSION_ISSUER" \
        --duration "$DURATION" --json | tee "$RESULTS/jwks_verify.json"
}
