-- Rate-limit buckets kept in the database: one GCRA state per key, the
-- theoretical arrival time of its next call in microseconds since the
-- epoch. A row whose time has passed is a full bucket and is pruned.
CREATE TABLE rate_limit_buckets (
    key     TEXT    PRIMARY KEY NOT NULL,
    tat     INTEGER NOT NULL,
    allowed BOOLEAN NOT NULL
);

CREATE INDEX rate_limit_buckets_tat ON rate_limit_buckets (tat);
