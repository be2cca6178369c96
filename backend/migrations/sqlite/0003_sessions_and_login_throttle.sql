-- Logged-out tokens, kept until they would have expired anyway (milliseconds since the epoch).
CREATE TABLE revoked_tokens (
    jti        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);

-- Failed logins per account ('account:<email>') and per client ('client:<address>') in the
-- current window; in the database so that every replica sees the same counts.
CREATE TABLE login_failures (
    key          TEXT    PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL
);
CREATE INDEX login_failures_window ON login_failures (window_start);
