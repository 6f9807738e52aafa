"""A plain sqlite3 loop of the service's confirm UPDATE, one transaction each,
as the ceiling the service's SQLite confirmation is compared with."""
import json
import sqlite3
import sys
import time

path, ids_file, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
ids = [line.strip() for line in open(ids_file) if line.strip()]
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA busy_timeout = 10000")
n = 0
start = time.monotonic()
while time.monotonic() - start < seconds:
    row = db.execute(
        "UPDATE accounts SET verified = 1, updated_at = ?2 WHERE id = ?1 AND verified = 0 "
        "RETURNING id, email, username, first_name, last_name, phone_number, address, "
        "verified, term_and_condition, created_from, created_at, updated_at",
        (ids[n % len(ids)], int(time.time() * 1e6)),
    ).fetchall()
    n += 1
elapsed = time.monotonic() - start
print(json.dumps({"scenario": "sqlite3-loop", "updates": n, "duration_s": elapsed, "tps": n / elapsed}))
