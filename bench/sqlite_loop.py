"""A plain sqlite3 loop of one of the service's statements by id, one
statement (and so one transaction) each, as the ceiling the service's SQLite
figures are compared with:

    sqlite_loop.py DB IDS_FILE SECONDS [update|select]

`update` (the default) is the confirm UPDATE, `select` the GetAccount SELECT."""
import json
import sqlite3
import sys
import time

COLUMNS = ("id, email, username, first_name, last_name, phone_number, address, "
           "verified, term_and_condition, created_from, created_at, updated_at")
STATEMENTS = {
    "update": ("UPDATE accounts SET verified = 1, updated_at = ?2 WHERE id = ?1 AND verified = 0 "
               "RETURNING " + COLUMNS),
    "select": "SELECT " + COLUMNS + " FROM accounts WHERE id = ?1",
}

path, ids_file, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
kind = sys.argv[4] if len(sys.argv) > 4 else "update"
sql = STATEMENTS[kind]
ids = [line.strip() for line in open(ids_file) if line.strip()]
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA busy_timeout = 10000")
n = 0
start = time.monotonic()
while time.monotonic() - start < seconds:
    params = (ids[n % len(ids)], int(time.time() * 1e6)) if kind == "update" else (ids[n % len(ids)],)
    db.execute(sql, params).fetchall()
    n += 1
elapsed = time.monotonic() - start
print(json.dumps({"scenario": "sqlite3-loop-" + kind, "statements": n, "duration_s": elapsed, "tps": n / elapsed}))
