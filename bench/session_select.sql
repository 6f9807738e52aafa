\set i random(1, :sessions)
SELECT id, account_id, created_at, last_used_at, user_agent, ip_address, ended_at, COALESCE(end_reason, '') AS end_reason FROM sessions WHERE id = md5('session' || :i)::uuid;
