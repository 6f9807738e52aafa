"""Inserts N unverified accounts into a SQLite database created by the
service, and writes their ids (shuffled) to a file."""
import random
import sqlite3
import sys
import time
import uuid

path, count, ids_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
now = int(time.time() * 1e6)
ids = [str(uuid.uuid4()) for _ in range(count)]
db = sqlite3.connect(path)
db.executemany(
    "INSERT INTO accounts (id, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
    ((i, f"bench{n}@bench.example", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA", now, now)
     for n, i in enumerate(ids)),
)
db.commit()
random.shuffle(ids)
with open(ids_file, "w") as f:
    f.write("\n".join(ids) + "\n")
