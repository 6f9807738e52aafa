"""Inserts verified accounts and live sessions (each with a current refresh
token) into a SQLite database created by the service, spread evenly over
the accounts, and writes a shuffled sample of `account_id session_id` pairs
and the account ids:

    seed_sessions_sqlite.py DB ACCOUNTS SESSIONS HASH_FILE PAIRS_OUT SAMPLE IDS_OUT

Every account's password hash is the one in HASH_FILE."""
import hashlib
import random
import sqlite3
import sys
import time
import uuid

path, accounts, sessions, hash_file, pairs_out, sample, ids_out = sys.argv[1:8]
accounts, sessions, sample = int(accounts), int(sessions), int(sample)
password_hash = open(hash_file).read().strip()
now = int(time.time() * 1e6)
account_ids = [str(uuid.uuid4()) for _ in range(accounts)]
session_ids = [str(uuid.uuid4()) for _ in range(sessions)]
owner = [account_ids[i % accounts] for i in range(sessions)]
db = sqlite3.connect(path)
db.execute("PRAGMA busy_timeout = 10000")
db.executemany(
    "INSERT INTO accounts (id, email, password_hash, verified, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?)",
    ((a, f"sess{n}@bench.example", password_hash, now, now) for n, a in enumerate(account_ids, 1)),
)
db.executemany(
    "INSERT INTO sessions (id, account_id, created_at, last_used_at, user_agent, ip_address) VALUES (?, ?, ?, ?, ?, ?)",
    ((s, owner[i], now, now, "Mozilla/5.0 (X11; Linux x86_64) bench", f"203.0.113.{i % 250}")
     for i, s in enumerate(session_ids)),
)
db.executemany(
    "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES (?, ?, ?)",
    ((hashlib.sha256(s.encode()).hexdigest(), s, now) for s in session_ids),
)
db.commit()
db.execute("ANALYZE")
picked = random.sample(range(sessions), min(sample, sessions))
with open(pairs_out, "w") as f:
    f.write("".join(f"{owner[i]} {session_ids[i]}\n" for i in picked))
with open(ids_out, "w") as f:
    f.write("\n".join(account_ids) + "\n")
