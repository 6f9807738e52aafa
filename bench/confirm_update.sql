\set i random(1, :accounts)
UPDATE accounts SET verified = TRUE, updated_at = now() WHERE id = md5('bench' || :i)::uuid AND NOT verified RETURNING id, email, username, first_name, last_name, phone_number, address, verified, term_and_condition, created_from, created_at, updated_at;
