\set i random(1, :sessions)
UPDATE sessions SET last_used_at = now() WHERE id = md5('session' || :i)::uuid;
