-- The contacts service's schema. Plain SQL that SQLite and PostgreSQL both accept, apart from the
-- id columns (INTEGER PRIMARY KEY AUTOINCREMENT here, GENERATED ... AS IDENTITY there).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER,
    created       INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created    INTEGER NOT NULL
);

CREATE TABLE password_resets (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created    INTEGER NOT NULL
);

CREATE TABLE contacts (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    owner   TEXT,
    name    TEXT    NOT NULL,
    email   TEXT    NOT NULL,
    phone   TEXT,
    company TEXT,
    vip     INTEGER NOT NULL DEFAULT 0,
    notes   TEXT,
    created INTEGER,
    updated INTEGER
);

CREATE TABLE notes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner      TEXT,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    body       TEXT    NOT NULL,
    created    INTEGER
);

-- Written by the monitoring handlers, in the same transaction as the change they describe.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    user_id    TEXT,
    action     TEXT    NOT NULL,
    table_name TEXT    NOT NULL,
    record_id  TEXT    NOT NULL,
    changes    TEXT    NOT NULL
);

-- Messages for a mailer or a queue to deliver; written in the same transaction as the change.
CREATE TABLE outbox (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    topic     TEXT    NOT NULL,
    payload   TEXT    NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
);
