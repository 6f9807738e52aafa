-- Wrong confirmation codes tried per normalised address, known or not: an
-- address without a code to count them on burns after as many wrong tries
-- as a real code does, so the answers do not tell the two apart.
CREATE TABLE code_tries (
    email         TEXT        PRIMARY KEY,
    failures      INTEGER     NOT NULL,
    last_tried_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX code_tries_last_tried_at ON code_tries (last_tried_at);
