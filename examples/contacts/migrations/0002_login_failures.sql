-- Failed logins, counted per normalised email whether or not an account has that email, so that
-- the lock-out answers alike for every address and tells no one which ones have accounts. The
-- count moves here from `users`; counts and locks in force carry over, as if their last failure
-- were now.

CREATE TABLE login_failures (
    email        TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    last_failure INTEGER NOT NULL,
    locked_until INTEGER
);

-- Rows whose last failure is older than the lock-out period are forgotten (and deleted).
CREATE INDEX login_failures_by_last_failure ON login_failures (last_failure);

INSERT INTO login_failures (email, failures, last_failure, locked_until)
SELECT email, failed_logins, CAST(strftime('%s', 'now') AS INTEGER) * 1000, locked_until
FROM users
WHERE failed_logins > 0 OR locked_until IS NOT NULL;

ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN locked_until;
