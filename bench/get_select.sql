\set i random(1, :accounts)
SELECT id, email, username, first_name, last_name, phone_number, address, verified, term_and_condition, created_from, created_at, updated_at FROM accounts WHERE id = md5('bench' || :i)::uuid;
